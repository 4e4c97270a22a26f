"""Start os-ken (4.x has no osken-manager) with one app, listening on a port.

usage: python3 osken_runner.py PORT APP_MODULE_PATH
The app's own log lines go to the file named by $RVS_OSKEN_LOG; it listens on
$RVS_OSKEN_HOST (default 127.0.0.1).
"""
import os
import sys

os.environ.setdefault("OSKEN_HUB_TYPE", "eventlet")

from os_ken import cfg  # noqa: E402
from os_ken.base.app_manager import AppManager  # noqa: E402
from os_ken.controller import controller  # noqa: E402,F401  (registers ofp_* options)
from os_ken.lib import hub  # noqa: E402


def main():
    port, app = sys.argv[1], sys.argv[2]
    sys.path.insert(0, os.path.dirname(os.path.abspath(app)))
    mod = os.path.splitext(os.path.basename(app))[0]
    cfg.CONF(
        args=["--ofp-tcp-listen-port", port, "--ofp-listen-host",
              os.environ.get("RVS_OSKEN_HOST", "127.0.0.1")],
        project="os_ken",
    )
    mgr = AppManager.get_instance()
    mgr.load_apps([mod])
    contexts = mgr.create_contexts()
    services = mgr.instantiate_apps(**contexts)
    try:
        hub.joinall(services)
    finally:
        mgr.close()


if __name__ == "__main__":
    main()
