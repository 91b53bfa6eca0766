"""Watches one running container: ``python -m imagestore.supervisor CONTAINER_ID``.

Started detached by ``start_container``, so the container outlives the web server and
the workers. It runs the OCI runtime in the foreground with the container's output
going to its log, then records the exit code. If this process dies with the host,
``containers.reconcile`` shows the container exited.
"""

from __future__ import annotations

import os
import subprocess
import sys


def main(container_id: str) -> int:
    import django

    django.setup()
    from django.utils import timezone

    from imagestore.models import Container
    from imagestore.services.containers import container_dir
    from imagestore.services.containers.network import teardown_network

    container = Container.objects.get(pk=container_id)
    directory = container_dir(container)
    binary = os.environ.get("CONTAINER_RUNTIME_BINARY") or "runc"
    state = directory / "state"
    subprocess.run([binary, "delete", "--force", container_id], capture_output=True)  # a stale one, if any
    process = subprocess.Popen([binary, "run", "--bundle", str(directory), container_id],
                               stdin=subprocess.DEVNULL, stdout=sys.stdout, stderr=sys.stderr)
    state.write_text("running")
    code = process.wait()
    subprocess.run([binary, "delete", "--force", container_id], capture_output=True)
    teardown_network(directory)
    Container.objects.filter(pk=container_id).update(
        state=Container.State.EXITED, exit_code=code if code >= 0 else 128 - code, finished_at=timezone.now(),
        supervisor_pid=None,
    )
    state.write_text("exited")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
