"""Run azmlinfsrv exactly as its console script does, but bound to 127.0.0.1.

azmlinfsrv always binds 0.0.0.0 (a constant, no flag). A local endpoint on a laptop or CI
machine must stay on loopback, so this launcher swaps that constant and hands over to the
server's own entry point; arguments, environment handling and logging are azmlinfsrv's.

    python platforms/local/azmlinfsrv_loopback.py --entry_script score.py --model_dir DIR --port 5001
"""

import sys

from azureml_inference_server_http import amlserver

LOOPBACK = "127.0.0.1"

if __name__ == "__main__":
    amlserver.DEFAULT_HOST = LOOPBACK
    sys.argv[0] = "azmlinfsrv"
    sys.exit(amlserver.run())
