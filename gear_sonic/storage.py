"""Where experiment files live: a local path or any fsspec URL (s3://, gs://, file://, ...).

A location is a `Path` for local storage (a plain path or file://) and the URL string otherwise,
so local runs keep their exact behaviour (temp file + os.replace, gear_sonic/utils/atomic_io.py).
On object stores a write is whole or absent: the bytes go up in a single put (S3 and GCS publish
an object, multipart or not, only once its upload completed), so a process killed mid-upload
leaves the previous object at the key. Other remote filesystems write a temp key and rename it.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
from functools import lru_cache
from pathlib import Path

from gear_sonic.utils import atomic_io

# fsspec protocol -> the package that implements it (named in the error when it is missing).
BACKEND_PACKAGES = {
    "s3": "s3fs",
    "s3a": "s3fs",
    "gs": "gcsfs",
    "gcs": "gcsfs",
    "az": "adlfs",
    "abfs": "adlfs",
    "abfss": "adlfs",
    "hf": "huggingface_hub",
}
# Stores where a single put is atomic (the object appears whole or not at all).
OBJECT_STORES = {"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss"}
LOCAL_PROTOCOLS = {"file", "local"}

Location = "Path | str"


class StorageError(ValueError):
    """A storage location that cannot be used: backend missing, no credentials, no bucket."""


def protocol(path) -> str:
    text = str(path)
    return text.split("://", 1)[0].lower() if "://" in text else "file"


def is_remote(path) -> bool:
    return protocol(path) not in LOCAL_PROTOCOLS


def location(path):
    """-> a Path for local storage (file:// stripped), the URL string for remote storage."""
    if isinstance(path, Path):
        return path
    text = str(path)
    if not is_remote(text):
        return Path(text.split("://", 1)[1] if "://" in text else text)
    return text.rstrip("/")


def join(base, *names: str):
    base = location(base)
    if isinstance(base, Path):
        return base.joinpath(*names)
    return "/".join([base, *(name.strip("/") for name in names)])


def name_of(path) -> str:
    return str(path).rstrip("/").rsplit("/", 1)[-1]


@lru_cache(maxsize=None)
def _filesystem(proto: str):
    import fsspec

    try:
        return fsspec.filesystem(proto)
    except ImportError:
        package = BACKEND_PACKAGES.get(proto, f"the fsspec backend for {proto}://")
        raise StorageError(
            f"{proto}:// storage needs the package {package}: pip install {package}"
        ) from None
    except ValueError as err:  # fsspec: "Protocol not known"
        raise StorageError(f"{proto}:// is not a storage fsspec knows ({err})") from None


def filesystem(url: str):
    """-> (fsspec filesystem, path inside it) for a remote URL."""
    fs = _filesystem(protocol(url))
    return fs, fs._strip_protocol(url)


def _remote_error(url: str, action: str, err: BaseException) -> StorageError:
    kind = type(err).__name__
    if kind in ("NoCredentialsError", "PartialCredentialsError") or isinstance(
        err, PermissionError
    ):
        why = "access denied or no credentials (set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, " \
            "AWS_PROFILE or the backend's own login)"
    elif isinstance(err, FileNotFoundError):
        why = "the bucket does not exist (create it first)"
    else:
        why = f"{kind}: {str(err).strip().splitlines()[0] if str(err).strip() else ''}"
    return StorageError(f"{url}: cannot {action}: {why}")


def check_access(url) -> None:
    """Fail with one line before a run starts if a remote experiment dir cannot be written."""
    if not is_remote(url):
        return
    fs, path = filesystem(str(url))
    try:  # a write, not exists(): s3fs answers False to exists() for a missing login too
        probe = f"{path}/.gear_sonic_write_check"
        fs.pipe_file(probe, b"")
        fs.rm_file(probe)
    except StorageError:
        raise
    except Exception as err:  # botocore raises its own classes for missing credentials
        raise _remote_error(str(url), "write the experiment dir", err) from None


def exists(path) -> bool:
    path = location(path)
    if isinstance(path, Path):
        return path.exists()
    fs, inner = filesystem(path)
    return fs.exists(inner)


def is_file(path) -> bool:
    path = location(path)
    if isinstance(path, Path):
        return path.is_file()
    fs, inner = filesystem(path)
    return fs.isfile(inner)


def read_bytes(path) -> bytes:
    path = location(path)
    if isinstance(path, Path):
        return path.read_bytes()
    fs, inner = filesystem(path)
    return fs.cat_file(inner)


def read_text(path) -> str:
    return read_bytes(path).decode()


def atomic_write_bytes(data: bytes, path):
    """Write `data` so that readers see the old file or the new one, never a part."""
    path = location(path)
    if isinstance(path, Path):
        return atomic_io.atomic_write_bytes(data, path)
    fs, inner = filesystem(path)
    if protocol(path) in OBJECT_STORES:
        fs.pipe_file(inner, data)
    else:
        tmp = f"{inner}.{os.getpid()}.tmp"
        fs.pipe_file(tmp, data)
        fs.mv(tmp, inner)
    return path


def atomic_write_text(text: str, path):
    return atomic_write_bytes(text.encode(), path)


def create_exclusive(data: bytes, path) -> bool:
    """Write `path` only if nothing is there; -> False if it exists (an S3 conditional put)."""
    path = location(path)
    if isinstance(path, Path):
        try:
            with open(path, "xb") as handle:
                handle.write(data)
        except FileExistsError:
            return False
        return True
    fs, inner = filesystem(path)
    try:
        fs.pipe_file(inner, data, mode="create")
    except FileExistsError:
        return False
    return True


def makedirs(path) -> None:
    path = location(path)
    if isinstance(path, Path):
        path.mkdir(parents=True, exist_ok=True)
    # Object stores have no directories: a prefix exists once an object is under it.


def list_names(path, pattern: str = "*") -> list[str]:
    """Names of the files directly under `path` that match `pattern`, sorted."""
    path = location(path)
    if isinstance(path, Path):
        return sorted(p.name for p in path.glob(pattern) if p.is_file())
    fs, inner = filesystem(path)
    try:
        entries = fs.ls(inner, detail=True, refresh=True)
    except FileNotFoundError:
        return []
    names = (name_of(e["name"]) for e in entries if e.get("type") == "file")
    return sorted(n for n in names if fnmatch.fnmatch(n, pattern))


def modified_time(path) -> float:
    path = location(path)
    if isinstance(path, Path):
        return path.stat().st_mtime
    fs, inner = filesystem(path)
    return fs.modified(inner).timestamp()


def upload_file(local: Path, path) -> None:
    atomic_write_bytes(Path(local).read_bytes(), path)


def download_file(path, local: Path) -> Path:
    """Copy a remote file next to `local`, then rename it there (a reader never sees a part)."""
    data = read_bytes(path)
    atomic_io.atomic_write_bytes(data, local)
    return Path(local)


def staging_dir(url: str, name: str) -> Path:
    """A local folder for files of a remote experiment dir that are written often (event files,
    evaluation outputs): kept under ~/.cache/gear_sonic/staging, one per URL."""
    digest = hashlib.sha1(str(url).encode()).hexdigest()[:12]
    root = Path(os.environ.get("GEAR_SONIC_STAGING", Path.home() / ".cache" / "gear_sonic"))
    folder = root / "staging" / f"{name_of(url)}-{digest}" / name
    folder.mkdir(parents=True, exist_ok=True)
    return folder


class TreeUploader:
    """Uploads the files of a local folder to a remote prefix, each only when it changed."""

    def __init__(self, local: Path, remote: str):
        self.local = Path(local)
        self.remote = remote
        self._sent: dict[str, tuple[float, int]] = {}

    def sync(self) -> int:
        sent = 0
        for file in sorted(self.local.rglob("*")):
            if not file.is_file() or file.name.endswith(".tmp"):
                continue
            rel = file.relative_to(self.local).as_posix()
            stamp = (file.stat().st_mtime, file.stat().st_size)
            if self._sent.get(rel) == stamp:
                continue
            upload_file(file, join(self.remote, rel))
            self._sent[rel] = stamp
            sent += 1
        return sent


class Mirror:
    """A local copy of a remote dir for programs that need local files (the checkpoint monitor):
    `pull` fetches new files (keeping their remote modification time), `push` uploads a local
    sub-folder back, each file whole and only when it changed."""

    def __init__(self, url: str, local: Path):
        self.url = location(url)
        self.local = Path(local)
        self._uploaders: dict[str, TreeUploader] = {}

    def exists(self) -> bool:
        return bool(list_names(self.url))

    def pull(self, wanted=lambda name: True, refresh: tuple[str, ...] = ()) -> list[str]:
        """Fetch the files directly under the URL that `wanted(name)` accepts and that are not
        here yet; the names in `refresh` are fetched again every time."""
        fetched = []
        for name in list_names(self.url):
            target = self.local / name
            if not wanted(name) or (target.exists() and name not in refresh):
                continue
            self._fetch(join(self.url, name), target)
            fetched.append(name)
        return fetched

    def pull_tree(self, sub: str) -> int:
        """Fetch everything under `<url>/<sub>` (once, when a monitor starts)."""
        fs, root = filesystem(join(self.url, sub))
        count = 0
        for inner in fs.find(root):
            rel = inner[len(root):].lstrip("/")
            self._fetch(join(self.url, sub, rel), self.local / sub / rel)
            count += 1
        return count

    def push(self, sub: str) -> int:
        if not (self.local / sub).is_dir():
            return 0
        uploader = self._uploaders.setdefault(
            sub, TreeUploader(self.local / sub, join(self.url, sub))
        )
        return uploader.sync()

    @staticmethod
    def _fetch(url: str, target: Path) -> None:
        download_file(url, target)
        stamp = modified_time(url)
        os.utime(target, (stamp, stamp))
