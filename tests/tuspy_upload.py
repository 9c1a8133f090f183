"""Upload one file with tuspy, resuming a previous attempt when the URL storage holds one for
this file: tests/test_tus_clients.py runs it, kills it part-way, and runs it again.

    python tests/tuspy_upload.py ENDPOINT TOKEN FILE URL_STORAGE CHUNK_BYTES
"""

import sys

from tusclient import client
from tusclient.storage.filestorage import FileStorage

endpoint, token, path, storage, chunk = sys.argv[1:]
tus = client.TusClient(endpoint, headers={"Authorization": f"Bearer {token}"})
uploader = tus.uploader(
    path,
    chunk_size=int(chunk),
    metadata={"project": "tower-a", "filename": path.rsplit("/", 1)[-1], "phase": "python"},
    store_url=True,
    url_storage=FileStorage(storage),
)
print(f"starting at {uploader.offset} of {uploader.get_file_size()}", flush=True)
uploader.upload()
print(f"done {uploader.url}", flush=True)
