"""Download the four MNIST gz files, checked against their canonical md5.

Each file is fetched whole, checked, written to a temporary file in the target directory and then renamed into place
with `os.replace`, so an interrupted or corrupt download never leaves a half-written file under a standard name.
Files already present with the right md5 are kept.
"""

import http.client
import os
import tempfile
import urllib.request
from pathlib import Path

from minivae.data.idx import MNIST_GZ, md5_hex
from minivae.errors import MinivaeError

MNIST_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/"
TIMEOUT_SECONDS = 60


def fetch(url, directory):
    """The bytes at `url`; any network failure is a one-line MinivaeError telling the user what to do instead."""
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response:
            return response.read()
    except (OSError, http.client.HTTPException, ValueError) as e:  # URLError and timeouts are OSErrors
        reason = getattr(e, "reason", None) or e
        raise MinivaeError(f"cannot download MNIST from {url}: {reason}; put the four IDX files in {directory} yourself"
                           ) from None


def write_atomically(path, data):
    """Write `data` to a temporary file next to `path`, then rename it to `path` (atomic on one file system)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        raise MinivaeError(f"{path}: cannot write the downloaded file ({e.strerror or e})") from None


def download_mnist(directory, base_url=MNIST_URL):
    """Download `train-images-idx3-ubyte.gz`, ... (the four MNIST files) from `base_url` into `directory` -> directory.

    `base_url` is the folder URL the four file names are appended to (any scheme urllib opens, e.g. `file://`).
    """
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise MinivaeError(f"{directory}: cannot create the download directory ({e.strerror or e})") from None
    for name, (_, md5) in MNIST_GZ.items():
        target = directory / name
        if target.is_file() and md5_hex(target.read_bytes()) == md5:
            continue
        url = base_url.rstrip("/") + "/" + name
        data = fetch(url, directory)
        if md5_hex(data) != md5:
            raise MinivaeError(f"{url}: downloaded file has md5 {md5_hex(data)} (expected {md5}); "
                               f"put the four IDX files in {directory} yourself")
        write_atomically(target, data)
    return directory
