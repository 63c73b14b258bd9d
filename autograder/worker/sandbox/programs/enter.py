"""Become the sandbox's unprivileged process, then (run as a program) exec the kernel.

RUNS INSIDE THE SANDBOX, with nothing but the standard library (``python -I -S``):
``enter.py CONFIG_JSON -- KERNEL_COMMAND...`` is bwrap's command for a kernel started
afresh; ``enter_sandbox`` is also what the holder (holder.py) and a kernel forked from
the zygote (zygote_server.py) do, loaded from this file by path.

``enter_sandbox(config)``: no new privileges; grader as root: drop to the config's uid
and gid for real, then a user namespace of its own (so RLIMIT_NPROC counts this
sandbox's processes only; nested user namespaces disabled) and every capability it gave
dropped (bounding set, ambient set, all sets); an ordinary user's grader: every capability
dropped (a kernel forked from the zygote joined bwrap's user namespace, which gave it all);
the working folder; the rlimits; a seccomp filter refusing the system calls that hold
memory no process's memory shows (``DENIED``).
"""
import ctypes
import errno
import json
import os
import resource
import struct
import sys

PR_SET_DUMPABLE, PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP, PR_CAP_AMBIENT = 4, 24, 38, 22, 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
CLONE_NEWUSER = 0x10000000
LINUX_CAPABILITY_VERSION_3 = 0x20080522


def _check(result, what, libc):
    if result != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"{what}: {os.strerror(error)}")


def drop_capabilities(libc):
    """Every capability of this process: bounding set, ambient set, then all sets."""
    cap = 0
    while libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) == 0:  # up to the last one the kernel knows
        cap += 1
    libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    header = (ctypes.c_uint32 * 2)(LINUX_CAPABILITY_VERSION_3, 0)
    _check(libc.capset(header, (ctypes.c_uint32 * 6)()), "capset", libc)


def _own_user_namespace(uid, gid, libc):
    for name, text in (("uid_map", f"{uid} {uid} 1"), ("setgroups", "deny"), ("gid_map", f"{gid} {gid} 1")):
        with open(f"/proc/self/{name}", "w") as f:
            f.write(text)
    try:  # no user namespaces below this one (what bwrap's --disable-userns does)
        with open("/proc/sys/user/max_user_namespaces", "w") as f:
            f.write("0")
    except OSError:
        pass
    # the new namespace gave every capability in it; an exec would drop them, a fork must
    drop_capabilities(libc)


# Memory a kernel can hold that no process's resident memory shows, so neither RLIMIT_DATA nor the
# watchdog bounds it: a memfd written and not mapped (a kernel held 3 GB in 30 of them, with a
# 2 GiB limit), System V shared memory detached after use, secret memory. Refused (EPERM), and any
# call through another ABI (x32, or i386's int 0x80 from a 64-bit process) that could reach them.
# {machine: (audit arch, {name: number})}
DENIED = {"x86_64": (0xC000003E, {"memfd_create": 319, "memfd_secret": 447, "shmget": 29}),
          "aarch64": (0xC00000B7, {"memfd_create": 279, "memfd_secret": 447, "shmget": 194})}
SECCOMP_MODE_FILTER, RET_ALLOW, RET_EPERM = 2, 0x7FFF0000, 0x00050000 | errno.EPERM
LD_ABS, JEQ, JGE, RET = 0x20, 0x15, 0x35, 0x06   # BPF_LD|W|ABS, BPF_JMP|JEQ|K, BPF_JMP|JGE|K, BPF_RET|K
X32_BIT = 0x40000000


def seccomp_program(machine):
    """The classic BPF program (bytes of ``struct sock_filter``) refusing ``DENIED[machine]``, or None."""
    if machine not in DENIED:
        return None
    arch, numbers = DENIED[machine]
    checks = [(JEQ, n) for n in numbers.values()]
    deny = len(checks) + 3   # from the instruction after the arch check: nr, x32, checks, allow
    program = [(LD_ABS, 0, 0, 4), (JEQ, 0, deny, arch),                       # another ABI: refused
               (LD_ABS, 0, 0, 0), (JGE, len(checks) + 1, 0, X32_BIT)]          # x32: refused
    program += [(code, len(checks) - i, 0, n) for i, (code, n) in enumerate(checks)]
    program += [(RET, 0, 0, RET_ALLOW), (RET, 0, 0, RET_EPERM)]
    return b"".join(struct.pack("=HBBI", *instruction) for instruction in program)


class _Filter(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def refuse_hidden_memory(libc):
    """Install the seccomp filter (after no_new_privs; inherited by every child and kept across exec)."""
    program = seccomp_program(os.uname().machine)
    if program is None:
        print(f"sandbox: no seccomp filter for {os.uname().machine}: memfd and System V shared memory "
              f"are not refused", file=sys.stderr)
        return
    buffer = ctypes.create_string_buffer(program, len(program))
    fprog = _Filter(len(program) // 8, ctypes.addressof(buffer))
    result = libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0)
    if result != 0:
        if ctypes.get_errno() != errno.EINVAL:   # EINVAL: a Linux built without seccomp filters, said as for the user namespace
            _check(result, "prctl(PR_SET_SECCOMP)", libc)
        print("sandbox: no seccomp filters in this Linux: memfd and System V shared memory are not refused",
              file=sys.stderr)


def enter_sandbox(config):
    libc = ctypes.CDLL(None, use_errno=True)
    _check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(PR_SET_NO_NEW_PRIVS)", libc)
    uid, gid = config["uid"], config["gid"]
    if uid is not None and os.getuid() == 0:
        os.setgroups([])
        os.setresgid(gid, gid, gid)
        os.setresuid(uid, uid, uid)
        _check(libc.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0), "prctl(PR_SET_DUMPABLE)", libc)  # else /proc/self is root's
        if libc.unshare(CLONE_NEWUSER) == 0:
            _own_user_namespace(uid, gid, libc)
        else:
            print(f"sandbox: no user namespace ({os.strerror(ctypes.get_errno())}); the process limit "
                  f"counts every process of uid {uid}", file=sys.stderr)
        if os.getuid() != uid or os.geteuid() != uid:
            sys.exit(f"sandbox: could not drop to uid {uid}")
    else:  # a kernel forked into an ordinary user's sandbox joined its user namespace: every capability there
        drop_capabilities(libc)
    os.chdir(config["cwd"])
    for name, value in config["limits"].items():
        resource.setrlimit(getattr(resource, name), (value, value))
    refuse_hidden_memory(libc)


def main(argv):
    """``enter.py CONFIG_JSON -- KERNEL_COMMAND...``: enter, then exec the kernel."""
    enter_sandbox(json.loads(argv[1]))
    os.execv(argv[3], argv[3:])


if __name__ == "__main__":
    main(sys.argv)
