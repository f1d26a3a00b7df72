"""`rkc encrypt` / `rkc encrypt --decrypt` and `rkc keygen`: encrypted .rknn files.

The format and the key files are described in backends/encrypt.py. Every problem (unreadable
or non-.rknn input, bad key file, wrong key, changed byte) is a one-line RkcError; outputs
are written to a temporary file and renamed, so a failure leaves nothing half-written.
"""

from __future__ import annotations

import argparse
import os
import stat
import sys
from pathlib import Path

from rkc.backends.encrypt import (
    KEY_BYTES,
    Passphrase,
    decrypt_rknn,
    encrypt_rknn,
    is_encrypted,
    new_raw_key,
    read_key,
)
from rkc.backends.rknn_file import ENCRYPTED_MAGIC, read_rknn
from rkc.errors import RkcError


def write_atomically(path: Path, data: bytes, mode: int = 0o666) -> None:
    """Write `data` to `path` through a temporary file created with `mode` (before the
    umask) and renamed over `path`; on any failure `path` is untouched and no temporary
    file stays behind."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except OSError as e:
        raise RkcError(f"cannot write {path}: {e.strerror or e}") from None
    finally:
        tmp.unlink(missing_ok=True)


def _read(path: Path) -> bytes:
    """The bytes of the regular file `path` (a device or pipe could be endless)."""
    try:
        if not stat.S_ISREG(path.stat().st_mode):
            raise RkcError(f"cannot read {path}: not a regular file")
        return path.read_bytes()
    except OSError as e:
        raise RkcError(f"cannot read {path}: {e.strerror or e}") from None


def _toolkit_encrypted(data: bytes) -> bool:
    return data[:len(ENCRYPTED_MAGIC)] == ENCRYPTED_MAGIC


def decrypted(data: bytes, path: Path, key: bytes | None) -> bytes:
    """`data` (the file `path`) as plain .rknn bytes: decrypted with `key` when it is
    rkc-encrypted, as it is otherwise; an RkcError when it is encrypted and `key` is None,
    or when rknn-toolkit2 encrypted it (a scheme rkc cannot decrypt)."""
    if _toolkit_encrypted(data):
        raise RkcError(f"{path}: encrypted by rknn-toolkit2 (\"CYPTRKNN\"); its scheme is "
                       f"not public and rkc cannot decrypt it")
    if not is_encrypted(data):
        return data
    if key is None:
        raise RkcError(f"{path}: encrypted model (rkc format); pass --key KEYFILE")
    try:
        return decrypt_rknn(data, key)
    except RkcError as e:
        raise RkcError(f"{path}: {e}") from None


def read_plain_rknn(path: Path, key_file: str | None) -> bytes:
    """The plain .rknn bytes of the file `path`, decrypted with the key in `key_file` when
    needed (see `decrypted`)."""
    key = read_key(key_file) if key_file else None
    return decrypted(_read(path), path, key)


def _key_kind(key: bytes) -> str:
    return "passphrase, scrypt" if isinstance(key, Passphrase) else f"{KEY_BYTES}-byte key"


def cmd_encrypt(args: argparse.Namespace) -> None:
    source, output = Path(args.model), Path(args.output)
    key = read_key(args.key)
    data = _read(source)
    if args.decrypt:
        if not is_encrypted(data) and not _toolkit_encrypted(data):
            raise RkcError(f"{source}: not an encrypted model, nothing to decrypt")
        result = decrypted(data, source, key)
        what = "decrypted"
    else:
        if is_encrypted(data) or _toolkit_encrypted(data):
            raise RkcError(f"{source}: already encrypted")
        try:
            read_rknn(data)
        except RkcError as e:
            raise RkcError(f"{source}: not a readable .rknn file: {e}") from None
        result = encrypt_rknn(data, key)
        what = f"encrypted, AES-256-GCM, {_key_kind(key)}"
    write_atomically(output, result)
    print(f"wrote {output} ({len(result)} bytes, {what})", file=sys.stderr)


def cmd_keygen(args: argparse.Namespace) -> None:
    output = Path(args.output)
    if output.exists() and not args.force:
        raise RkcError(f"{output} exists; a new key would make the models encrypted with "
                       f"it unreadable (use --force to overwrite)")
    write_atomically(output, new_raw_key(), mode=0o600)
    os.chmod(output, 0o600)
    print(f"wrote {output} ({KEY_BYTES} random bytes, mode 0600)", file=sys.stderr)


def add_encrypt_parsers(subparsers) -> None:
    p = subparsers.add_parser(
        "encrypt", help="encrypt (or decrypt) a .rknn file with a key",
        description="Encrypt a .rknn file with AES-256-GCM (rkc's own format, not "
                    "rknn-toolkit2's: only rkc reads it back). KEYFILE holds 32 raw bytes "
                    "(`rkc keygen`) or a one-line passphrase (stretched with scrypt). A "
                    "wrong key or any changed byte is detected. Needs `pip install "
                    "'rkc[crypto]'`.")
    p.add_argument("model", metavar="MODEL.rknn", help="the .rknn file")
    p.add_argument("--key", required=True, metavar="KEYFILE",
                   help="32 raw bytes or a passphrase text file")
    p.add_argument("-o", "--output", required=True, metavar="OUT.rknn",
                   help="where to write the result")
    p.add_argument("--decrypt", action="store_true",
                   help="decrypt an encrypted file back to the plain .rknn")
    p.set_defaults(func=cmd_encrypt)

    p = subparsers.add_parser(
        "keygen", help="write a new random key file for `rkc encrypt`",
        description=f"Write {KEY_BYTES} random bytes to KEYFILE (mode 0600).")
    p.add_argument("-o", "--output", required=True, metavar="KEYFILE",
                   help="the key file to create")
    p.add_argument("--force", action="store_true", help="overwrite an existing file")
    p.set_defaults(func=cmd_keygen)
