"""Tests for workbench.sandbox: hostile programs stay inside their limits, and the next run works.

Every test that throws something nasty at the sandbox ends with `_still_works()`: a plain
`print(1+1)` must succeed afterwards (a leaked process or zombie would eat the process limit).
"""

import os
import select
import socket
from pathlib import Path

import pytest

from workbench.errors import WorkbenchError
from workbench.sandbox import isolation, run

ROOT = os.geteuid() == 0
REPO = Path(__file__).resolve().parents[1]
needs_root = pytest.mark.skipif(not ROOT, reason="without root the code runs as the caller, who may write here")


def _still_works():
    result = run("print(1+1)")
    assert (result.status, result.exit_code, result.stdout) == ("finished", 0, "2\n"), result


def _processes_of(uid: int) -> int:
    count = 0
    for name in os.listdir("/proc"):
        try:
            count += name.isdigit() and os.stat(f"/proc/{name}").st_uid == uid
        except OSError:
            pass
    return count


def test_plain_run_and_result_fields():
    result = run("print('hello')")
    assert result.ok
    assert (result.status, result.exit_code, result.stdout, result.stderr) == ("finished", 0, "hello\n", "")
    assert result.truncated is False and result.signal is None
    assert 0 < result.seconds < 5


def test_stdin_is_passed():
    result = run("import sys\nprint(sum(int(x) for x in sys.stdin.read().split()))", stdin="1 2\n3\n")
    assert result.stdout == "6\n"
    assert run("print(input()[::-1])", stdin="abc").stdout == "cba\n"


def test_exit_codes():
    assert run("import sys; sys.exit(7)").exit_code == 7
    assert run("exit(3)").exit_code == 3  # exit() exists even though site.py is skipped
    result = run("raise ValueError('boom')")
    assert (result.status, result.exit_code) == ("finished", 1)
    assert "ValueError: boom" in result.stderr
    assert 'File "main.py", line 1' in result.stderr
    assert "_run_main" not in result.stderr  # the sandbox's own frame is left out
    _still_works()


def test_syntax_error_is_a_finished_run_with_nonzero_exit():
    result = run("def f(:\n    pass")
    assert result.status == "finished" and result.exit_code != 0
    assert "SyntaxError" in result.stderr
    _still_works()


def test_stdlib_is_usable_but_site_packages_are_not():
    result = run("import json, collections, fractions, itertools\nprint(json.dumps([1]))")
    assert result.stdout == "[1]\n"
    assert "ModuleNotFoundError" in run("import yaml").stderr  # installed here, not in the sandbox


def test_infinite_loop_times_out():
    result = run("while True:\n    pass", timeout_s=1)
    assert result.status == "timeout" and result.exit_code is None
    assert result.seconds < 1 + 2
    _still_works()


def test_sleeping_code_times_out_on_the_wall_clock():
    result = run("import time\nprint('started', flush=True)\ntime.sleep(60)", timeout_s=1)
    assert result.status == "timeout"
    assert result.stdout == "started\n"  # output written before the kill is kept
    assert result.seconds < 1 + 2
    _still_works()


def test_fork_bomb_is_bounded_and_cleaned_up():
    before = _processes_of(65534)
    result = run("import os\nwhile True:\n    os.fork()", timeout_s=3)
    assert result.status in ("finished", "timeout", "killed")
    assert result.status != "finished" or result.exit_code != 0  # fork hit the process limit
    assert result.seconds < 3 + 2
    if ROOT:
        assert _processes_of(65534) <= before  # nothing left running (or as a zombie)
    _still_works()


def test_detached_child_does_not_outlive_the_run():
    code = ("import os, time\n"
            "if os.fork() == 0:\n"
            "    os.setsid()\n"  # escapes the process group, not the PID namespace
            "    time.sleep(60)\n"
            "print('parent done')")
    result = run(code, timeout_s=5)
    assert result.stdout == "parent done\n"
    if ROOT and isolation().get("pid_namespace"):
        assert result.status == "finished" and result.seconds < 2  # did not wait for the child
        assert _processes_of(65534) == 0
    _still_works()


def test_memory_hog_fails():
    result = run("x = bytearray(10**10)", memory_mb=128)
    assert (result.status == "finished" and "MemoryError" in result.stderr) or result.status == "killed"
    result = run("chunks = []\nwhile True:\n    chunks.append(bytearray(10**6))", memory_mb=64, timeout_s=5)
    assert (result.status == "finished" and "MemoryError" in result.stderr) or result.status == "killed"
    _still_works()


@needs_root
def test_writes_outside_the_working_directory_fail(tmp_path):
    os.chmod(tmp_path, 0o700)  # /tmp itself is world-writable: use a directory only root may enter
    targets = [REPO / "SANDBOX_ESCAPE", tmp_path / "SANDBOX_ESCAPE", Path("/root/SANDBOX_ESCAPE")]
    code = ("import sys\n"
            "for path in sys.stdin.read().split():\n"
            "    try:\n"
            "        open(path, 'w').write('escaped')\n"
            "        print('wrote', path)\n"
            "    except OSError as e:\n"
            "        print('refused', path, type(e).__name__)\n"
            "open('inside.txt', 'w').write('fine')\n"
            "print(open('inside.txt').read())")
    result = run(code, stdin="\n".join(map(str, targets)))
    assert result.status == "finished", result
    assert result.stdout.endswith("fine\n")  # the working directory itself is writable
    for target in targets:
        assert not target.exists(), f"sandbox wrote {target}: {result.stdout}"
    _still_works()


@pytest.mark.skipif(not ROOT, reason="the private root needs a mount namespace (root)")
def test_the_code_sees_only_what_it_needs_to_run(tmp_path):
    from workbench.tasks.code import CODE_TASKS

    info = isolation()
    assert "error" not in info, info
    if not info.get("mount_namespace"):
        pytest.skip("no mount namespace on this machine")
    secret = Path.home() / ".workbench-sandbox-secret"
    secret.write_text("hidden")
    try:
        hidden = [CODE_TASKS["python_functions"], REPO / "README.md", REPO / "workbench" / "sandbox.py",
                  secret, Path("/proc/1/cmdline"), Path("/proc/self/status"), Path("/etc/passwd")]
        code = ("import os, sys\n"
                "for path in sys.stdin.read().split():\n"
                "    try:\n"
                "        print('READ', path, len(open(path).read()))\n"
                "    except OSError as e:\n"
                "        print('hidden', path, type(e).__name__)\n"
                "import json, re, collections, fractions\n"  # the standard library still works
                "print(sorted(os.listdir('/')))")
        result = run(code, stdin="\n".join(map(str, hidden)))
    finally:
        secret.unlink()
    assert result.status == "finished" and result.exit_code == 0, result
    lines = result.stdout.splitlines()
    assert [line.split()[0] for line in lines[:-1]] == ["hidden"] * len(hidden), result.stdout
    assert set(eval(lines[-1])) <= {"dev", "lib", "lib32", "lib64", "usr", "tmp", "root", "opt", "home"}
    _still_works()


def test_working_directory_is_private_and_removed():
    result = run("import os\nprint(os.getcwd())\nprint(os.environ['HOME'] == os.getcwd() == os.environ['TMPDIR'])")
    cwd, same = result.stdout.split()
    assert same == "True"
    assert not Path(cwd).exists()


def test_socket_connection_fails():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    code = ("import socket\n"
            "try:\n"
            f"    socket.create_connection(('127.0.0.1', {port}), timeout=2)\n"
            "    print('connected')\n"
            "except OSError as e:\n"
            "    print('blocked', type(e).__name__)")
    try:
        result = run(code, timeout_s=5)
        assert result.status == "finished", result
        assert result.stdout.startswith("blocked"), result.stdout
        readable, _, _ = select.select([server], [], [], 0)
        assert readable == []  # the server saw no connection attempt
    finally:
        server.close()
    _still_works()


def test_output_flood_is_truncated_and_killed():
    result = run("while True:\n    print('x' * 1000)", timeout_s=10, max_output_bytes=10_000)
    assert result.truncated is True
    assert result.status == "killed"
    assert len(result.stdout) == 10_000
    assert result.seconds < 5  # killed at the cap, not at the timeout
    _still_works()


def test_stderr_is_capped_too():
    result = run("import sys\nsys.stderr.write('e' * 50_000)", max_output_bytes=1000)
    assert result.truncated and len(result.stderr) == 1000


def test_isolation_report():
    info = isolation()
    assert "error" not in info, info
    assert info["network"] in ("namespace", "socket-patch")
    if ROOT:
        assert info["uid"] == 65534


def test_bad_arguments_raise():
    with pytest.raises(WorkbenchError):
        run("pass", timeout_s=0)
    with pytest.raises(WorkbenchError):
        run("pass", memory_mb=1)
    with pytest.raises(WorkbenchError):
        run("pass", max_output_bytes=-1)


def test_socket_patch_fallback_blocks_inet_but_keeps_unix_sockets(tmp_path):
    # The layer used where no network namespace is available (not root, or no CAP_SYS_ADMIN).
    import subprocess
    import sys

    from workbench.sandbox import _PRELUDE

    (tmp_path / "main.py").write_text(
        "import socket\n"
        "a, b = socket.socketpair()\n"  # AF_UNIX: asyncio needs it
        "print('unix ok')\n"
        "try:\n"
        "    socket.socket(socket.AF_INET, socket.SOCK_STREAM)\n"
        "    print('inet allowed')\n"
        "except PermissionError:\n"
        "    print('inet blocked')\n")
    out = subprocess.run([sys.executable, "-I", "-S", "-c", _PRELUDE, "block-network"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=30)
    assert out.stdout == "unix ok\ninet blocked\n", out.stderr
