import os

os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")
