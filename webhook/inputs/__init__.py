"""Reading what users hand in: YAML/JSON streams (``yamlio``) and manifests from files, directories
and stdin (``manifests``), with the file and document of every object kept for error messages."""
