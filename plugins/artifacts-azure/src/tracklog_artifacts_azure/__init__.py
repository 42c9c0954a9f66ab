"""tracklog artifact repository on Azure Blob Storage (``wasbs://``, ``abfss://``)."""
