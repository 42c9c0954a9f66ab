"""The plugin's options (``register_options``): light, so listing plugins stays quick."""

from tracklog.options import Option

DOWNLOAD_TTL = Option(
    "artifacts-azure", "presigned-download-ttl", int, 300,
    "Seconds a presigned Azure download URL stays valid.",
    env=("MLFLOW_PRESIGNED_DOWNLOAD_URL_TTL_SECONDS",), minimum=1,
)
UPLOAD_TTL = Option(
    "artifacts-azure", "upload-url-ttl", int, 3600,
    "Seconds an Azure multipart part URL stays valid.",
    env=("TRACKLOG_AZURE_UPLOAD_URL_TTL",), minimum=1,
)
