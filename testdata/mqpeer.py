#!/usr/bin/env python3
"""mqpeer.py: a Python side for chanmq's codec interop test (codec_linux_test.go).

It uses only the standard library: ctypes calls glibc's mq_* functions
(in libc since glibc 2.34, in librt before), so it proves that a message
chanmq's JSON codec writes is plain JSON text to any other program, with no
header, length or framing, and that JSON text another program writes is
what chanmq's JSON codec decodes.

  mqpeer.py check                     exit 0 if mq_open & co. can be called
  mqpeer.py recvjson NAME             receive one message; print one JSON line:
                                      {"priority", "length", "hex", "value", "types"}
                                      where value is json.loads of the message
                                      and types maps each key to its Python type
  mqpeer.py sendjson NAME PRIO JSON   json.loads(JSON), add a key the Go type
                                      lacks ("added_by_python"), json.dumps it
                                      Python's way (", " and ": ", non-ASCII
                                      escaped) and send it; print its hex

Blocking calls give up after 30 seconds. Exit status 0 on success, 1 on
failure, 2 on usage errors, 3 when this Python cannot call mq_open at all.
"""

import ctypes
import ctypes.util
import json
import os
import sys
import time


class Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class MqAttr(ctypes.Structure):
    # struct mq_attr: four longs and four reserved longs.
    _fields_ = [
        ("mq_flags", ctypes.c_long),
        ("mq_maxmsg", ctypes.c_long),
        ("mq_msgsize", ctypes.c_long),
        ("mq_curmsgs", ctypes.c_long),
        ("reserved", ctypes.c_long * 4),
    ]


def load_mq():
    """Returns the C library that has mq_open, with argument types set."""
    for name in (ctypes.util.find_library("rt"), ctypes.util.find_library("c"), "librt.so.1", "libc.so.6"):
        if not name:
            continue
        try:
            lib = ctypes.CDLL(name, use_errno=True)
            lib.mq_open
        except (OSError, AttributeError):
            continue
        lib.mq_open.argtypes = [ctypes.c_char_p, ctypes.c_int]  # no O_CREAT: no mode or attr
        lib.mq_open.restype = ctypes.c_int
        lib.mq_getattr.argtypes = [ctypes.c_int, ctypes.POINTER(MqAttr)]
        lib.mq_getattr.restype = ctypes.c_int
        lib.mq_timedreceive.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_size_t,
                                        ctypes.POINTER(ctypes.c_uint), ctypes.POINTER(Timespec)]
        lib.mq_timedreceive.restype = ctypes.c_ssize_t
        lib.mq_timedsend.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_size_t,
                                     ctypes.c_uint, ctypes.POINTER(Timespec)]
        lib.mq_timedsend.restype = ctypes.c_int
        lib.mq_close.argtypes = [ctypes.c_int]
        lib.mq_close.restype = ctypes.c_int
        return lib
    print("mqpeer.py: no C library with mq_open found", file=sys.stderr)
    sys.exit(3)


def fail(what):
    err = ctypes.get_errno()
    print("mqpeer.py: %s: %s" % (what, os.strerror(err)), file=sys.stderr)
    sys.exit(1)


def patience():
    now = time.time() + 30  # mq_timed* take an absolute CLOCK_REALTIME time
    return Timespec(int(now), int((now % 1) * 1e9))


def recvjson(lib, name):
    q = lib.mq_open(name.encode(), os.O_RDONLY)
    if q < 0:
        fail("mq_open")
    attr = MqAttr()
    if lib.mq_getattr(q, ctypes.byref(attr)) != 0:
        fail("mq_getattr")
    buf = ctypes.create_string_buffer(attr.mq_msgsize)
    prio = ctypes.c_uint()
    ts = patience()
    n = lib.mq_timedreceive(q, buf, attr.mq_msgsize, ctypes.byref(prio), ctypes.byref(ts))
    if n < 0:
        fail("mq_timedreceive")
    lib.mq_close(q)
    msg = buf.raw[:n]
    value = json.loads(msg)  # bytes in: json.loads detects UTF-8
    types = {k: type(v).__name__ for k, v in value.items()} if isinstance(value, dict) else {}
    print(json.dumps({"priority": prio.value, "length": n, "hex": msg.hex(),
                      "value": value, "types": types}, sort_keys=True))


def sendjson(lib, name, prio, text):
    value = json.loads(text)
    value["added_by_python"] = {"note": "a field the Go type does not have"}
    msg = json.dumps(value).encode("ascii")  # Python's style: spaces, \uXXXX escapes
    q = lib.mq_open(name.encode(), os.O_WRONLY)
    if q < 0:
        fail("mq_open")
    ts = patience()
    if lib.mq_timedsend(q, msg, len(msg), prio, ctypes.byref(ts)) != 0:
        fail("mq_timedsend")
    lib.mq_close(q)
    print(msg.hex())


def main(args):
    if args[:1] == ["check"] and len(args) == 1:
        load_mq()
    elif args[:1] == ["recvjson"] and len(args) == 2:
        recvjson(load_mq(), args[1])
    elif args[:1] == ["sendjson"] and len(args) == 4:
        sendjson(load_mq(), args[1], int(args[2]), args[3])
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main(sys.argv[1:])
