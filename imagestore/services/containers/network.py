"""A container's network: its own network namespace, prepared before the runtime starts and
handed to runc by path (the spec's ``linux.namespaces`` ``network`` entry), torn down by
``teardown_network`` whenever the container stops being run (its supervisor, ``reconcile``,
``remove_container``).

Modes, as Docker names them:

- ``bridge`` (the default): outbound access through pasta (Debian's ``passt``), a user-mode
  network stack that connects the namespace with ordinary sockets of the host. Pasta is
  started with ``--no-map-gw`` (the gateway address is not the host) and ``-T none -U none``
  (no host port is forwarded into the container's loopback), and ``-t none -u none`` (nothing
  published): the host's loopback services (Redis, PostgreSQL, the dashboard) are out of
  reach. Link-local and EC2-style metadata addresses are blackholed inside the namespace
  before the process starts; the container has no CAP_NET_ADMIN to remove those routes.
- ``none``: loopback only.
- ``host``: the host's network, no namespace; only when an operator asks for it.

Files in the container's folder: ``netns`` (the namespace, bind-mounted there so it lives
without a process), ``pasta.pid``, and the container's ``/etc/resolv.conf`` and
``/etc/hosts``, bind-mounted over the image's as Docker does (what the container writes to
them stays out of its root, out of ``docker diff`` and ``docker commit``).
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import shutil
import signal
import subprocess
from pathlib import Path

from django.utils.translation import gettext

from ...errors import BadRequest, ServiceError

NETWORK_MODES = ("bridge", "none", "host")
# Link-local (169.254.169.254: the metadata service of most clouds) and AWS's IPv6 metadata prefix.
BLACKHOLED = ("169.254.0.0/16", "fd00:ec2::/64")


def normalize_mode(mode: str | None, default: str) -> str:
    """A create's network mode; none named (docker's CLI sends "default") is ``default``."""
    if not mode or mode == "default":
        return default
    if mode not in NETWORK_MODES:
        raise BadRequest(gettext("network %(mode)s not found: use bridge, none or host") % {"mode": mode})
    return mode


def netns_path(directory: Path) -> Path:
    return directory / "netns"


def _pasta_pid(directory: Path) -> int | None:
    """pasta's pid from its pid file, if that process is still this container's pasta."""
    try:
        pid = int((directory / "pasta.pid").read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return None
    return pid if b"pasta" in cmdline and str(netns_path(directory)).encode() in cmdline else None


def teardown_network(directory: Path) -> None:
    """Stop the container's pasta and release its namespace; safe to call any number of times."""
    pid = _pasta_pid(directory)
    if pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    (directory / "pasta.pid").unlink(missing_ok=True)
    path = netns_path(directory)
    if os.path.ismount(path):
        subprocess.run(["umount", "-l", str(path)], capture_output=True)
    path.unlink(missing_ok=True)


def _run(args: list[str], what: str, stdin: str | None = None) -> None:
    result = subprocess.run(args, input=stdin, capture_output=True, text=True)
    if result.returncode != 0:
        raise ServiceError(gettext("cannot %(what)s: %(value)s")
                           % {"what": what, "value": (result.stderr or result.stdout).strip()[:500]})


def prepare_network(directory: Path, mode: str) -> str | None:
    """The namespace path to give runc for ``mode`` (None: the host's network)."""
    teardown_network(directory)  # a stale one from a run that ended with the host
    if mode == "host":
        return None
    path = netns_path(directory)
    path.touch()
    try:
        _run(["unshare", f"--net={path}", "true"], "create the container's network namespace")
        if mode == "bridge":
            pasta = shutil.which("pasta")
            if pasta is None:
                raise ServiceError(gettext("pasta (Debian package passt) is not installed: the bridge network "
                                           "needs it (or create the container with network none)"))
            # --runas 0: this pasta (passt 2023-03) cannot join a namespace given by path once it has
            # dropped to nobody; it still confines itself (seccomp, its own namespaces) as it starts.
            _run([pasta, "--config-net", "--netns", str(path), "--runas", "0", "--quiet",
                  "--no-map-gw", "-t", "none", "-u", "none", "-T", "none", "-U", "none",
                  "-P", str(directory / "pasta.pid")], "start pasta for the container's network")
        # One `ip -batch` in the namespace: loopback up, metadata addresses blackholed (the IPv6
        # prefix only where the kernel has IPv6: without it there is nothing to protect).
        prefixes = [p for p in BLACKHOLED if ":" not in p or os.path.exists("/proc/net/if_inet6")]
        _run(["nsenter", f"--net={path}", "ip", "-batch", "-"], "configure the container's network",
             stdin="link set lo up\n" + "".join(f"route add blackhole {prefix}\n" for prefix in prefixes))
    except BaseException:
        teardown_network(directory)
        raise
    return str(path)



# Bind-mounted over the image's files; an image without them gets empty placeholders, which
# ``docker diff`` leaves out (services/containers/diff.py).
RUNTIME_FILES = ("/etc/resolv.conf", "/etc/hosts")
# Docker's fallback when the host only has resolvers on its loopback, out of a container's reach.
FALLBACK_NAMESERVERS = ("8.8.8.8", "8.8.4.4")
MAX_HOST_FILE = 64 << 10


def _host_file(path: str) -> str:
    try:
        with open(path, "rb") as f:
            return f.read(MAX_HOST_FILE).decode("utf-8", "replace")
    except OSError:
        return ""


def _is_loopback(text: str) -> bool:
    try:
        return ipaddress.ip_address(text.split("%")[0]).is_loopback
    except ValueError:
        return False


def resolv_conf(mode: str) -> str:
    """The host's resolv.conf; for a namespaced container without its loopback nameservers
    (they would be the container's own loopback), Google's as Docker's fallback if none is left."""
    text = _host_file("/etc/resolv.conf")
    if mode == "host":
        return text
    lines = [line for line in text.splitlines()
             if not (line.split()[:1] == ["nameserver"] and len(line.split()) > 1 and _is_loopback(line.split()[1]))]
    if not any(line.split()[:1] == ["nameserver"] for line in lines):
        lines += [f"nameserver {address}" for address in FALLBACK_NAMESERVERS]
    return "\n".join(lines) + "\n"


def hosts_file(mode: str, hostname: str) -> str:
    if mode == "host":
        return _host_file("/etc/hosts")
    return (f"127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
            f"fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n"
            f"127.0.1.1\t{hostname}\n")


def network_files(directory: Path, mode: str, hostname: str) -> list[dict[str, object]]:
    """Write the container's resolv.conf and hosts; the spec's mounts for them."""
    contents = {"/etc/resolv.conf": resolv_conf(mode), "/etc/hosts": hosts_file(mode, hostname)}
    mounts: list[dict[str, object]] = []
    for destination in RUNTIME_FILES:
        source = directory / os.path.basename(destination)
        source.write_text(contents[destination])
        mounts.append({"destination": destination, "type": "bind", "source": str(source),
                       "options": ["rbind", "rprivate"]})
    return mounts
