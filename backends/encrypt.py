"""Encrypted `.rknn` files: AES-256-GCM over the whole plain file, the header authenticated.

rknn-toolkit2's encrypted models ("CYPTRKNN", `export_encrypted_rknn_model`) use a scheme
that is not public and only its runtime loads them; this is rkc's own, documented format.
It needs the optional `cryptography` package (`pip install 'rkc[crypto]'`).

File layout (integers little-endian): a 64-byte header, then the ciphertext of the whole
plain `.rknn` file (as long as it), then the 16-byte GCM tag.

    offset  size  field
    0       8     magic b"RKCCRYPT" (plain files start with "RKNN", toolkit ones "CYPTRKNN")
    8       2     format version, 1
    10      1     cipher: 1 = AES-256-GCM
    11      1     key derivation: 0 = raw 32-byte key, 1 = scrypt from a passphrase
    12      3     scrypt log2(N), r, p (0, 0, 0 for a raw key)
    15      1     reserved, 0
    16      16    scrypt salt (random; zeros for a raw key)
    32      12    GCM nonce (random, fresh for every file)
    44      4     reserved, 0
    48      8     plain file length L
    56      8     reserved, 0
    64      L     ciphertext
    64+L    16    GCM tag

The 64 header bytes are the GCM associated data: changing any byte of the file makes
decryption fail. Header fields are checked before any key derivation, and scrypt parameters
are bounded (`MAX_SCRYPT_MEMORY`, `MAX_SCRYPT_P`), so a hostile header cannot make the reader
spend unbounded time or memory.

Key files (`read_key`): a one-line UTF-8 text of printable characters (a leading byte-order
mark and one trailing newline are dropped; at least `MIN_PASSPHRASE_CHARS` characters, NFC
normalised) is a passphrase, stretched with scrypt (N = 2**17, r = 8, p = 1, the stored
random salt) into the AES key; otherwise a file of exactly 32 bytes is the raw AES-256 key
(`rkc keygen` writes one, never one that reads as text). A passphrase is returned as
`Passphrase` (a `bytes` subclass), a raw key as `bytes`; nonces and salts come from
`os.urandom`. The key is not stored anywhere in the file.
"""

from __future__ import annotations

import os
import struct
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from rkc.backends.rknn_file import RKC_ENCRYPTED_MAGIC
from rkc.errors import RkcError

MAGIC = RKC_ENCRYPTED_MAGIC
FORMAT_VERSION = 1
CIPHER_AES_256_GCM = 1
KDF_RAW_KEY = 0
KDF_SCRYPT = 1
KEY_BYTES = 32
SALT_BYTES = 16
NONCE_BYTES = 12
TAG_BYTES = 16
HEADER = struct.Struct("<8sHBBBBBB16s12sIQ8s")  # 64 bytes, the layout above
MIN_PASSPHRASE_CHARS = 8
MAX_KEY_FILE_BYTES = 4096
MAX_SCRYPT_MEMORY = 256 << 20  # bytes, 128 * r * N; the default parameters need 128 MiB
MAX_SCRYPT_P = 4
MIN_SCRYPT_LOG2_N = 10
INSTALL_HINT = "model encryption needs the 'cryptography' package: pip install 'rkc[crypto]'"
CORRUPTED = "wrong key or corrupted file"


class Passphrase(bytes):
    """A passphrase (UTF-8, NFC-normalised) read from a key file; stretched with scrypt."""


@dataclass(frozen=True)
class ScryptParams:
    """scrypt cost: N = 2**log2_n, r, p. Readers accept any within the module's bounds."""

    log2_n: int = 17
    r: int = 8
    p: int = 1

    def problem(self) -> str | None:
        """Why a reader refuses these parameters, None when they are acceptable."""
        if not 1 <= self.r <= 255 or not 1 <= self.p <= MAX_SCRYPT_P:
            return f"scrypt r={self.r} p={self.p} out of range (r 1..255, p 1..{MAX_SCRYPT_P})"
        if not MIN_SCRYPT_LOG2_N <= self.log2_n <= 40 or \
                128 * self.r << self.log2_n > MAX_SCRYPT_MEMORY:
            return (f"scrypt N=2**{self.log2_n}, r={self.r} out of range (N >= "
                    f"2**{MIN_SCRYPT_LOG2_N}, 128*r*N <= {MAX_SCRYPT_MEMORY >> 20} MiB)")
        return None


DEFAULT_SCRYPT = ScryptParams()


def _crypto():
    """The `cryptography` pieces used here; an RkcError with the install hint without it."""
    try:
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
        from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
    except ImportError:
        raise RkcError(INSTALL_HINT) from None
    return Cipher, algorithms, modes, Scrypt, InvalidTag


def is_encrypted(data: bytes) -> bool:
    """True when `data` starts like an rkc-encrypted model (not a toolkit "CYPTRKNN" one)."""
    return bytes(data[:len(MAGIC)]) == MAGIC


def _text_passphrase(raw: bytes) -> str | None:
    """The passphrase `raw` holds when it is one line of printable UTF-8, else None."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    text = text.removeprefix("\ufeff").removesuffix("\n").removesuffix("\r")
    return text if text and text.isprintable() else None


def key_from_bytes(raw: bytes, where: str = "key") -> bytes:
    """Classify key-file content as in the module docstring: `Passphrase` or raw `bytes`."""
    text = _text_passphrase(raw)
    if text is not None:
        text = unicodedata.normalize("NFC", text)
        if len(text) < MIN_PASSPHRASE_CHARS:
            raise RkcError(f"{where}: passphrase of {len(text)} characters, at least "
                           f"{MIN_PASSPHRASE_CHARS} needed")
        return Passphrase(text.encode("utf-8"))
    if len(raw) == KEY_BYTES:
        return bytes(raw)
    raise RkcError(f"{where}: {len(raw)} bytes, neither a {KEY_BYTES}-byte raw key nor a "
                   f"one-line passphrase")


def read_key(path: str | Path) -> bytes:
    """The key in the key file `path`: a raw 32-byte key or a `Passphrase`. RkcError when
    the file cannot be read or holds neither."""
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_KEY_FILE_BYTES + 1)
    except OSError as e:
        raise RkcError(f"key file {path}: {e.strerror or e}") from None
    if len(raw) > MAX_KEY_FILE_BYTES:
        raise RkcError(f"key file {path}: larger than {MAX_KEY_FILE_BYTES} bytes, not a key")
    return key_from_bytes(raw, f"key file {path}")


def new_raw_key() -> bytes:
    """32 random bytes that `key_from_bytes` reads back as a raw key (never as text)."""
    while True:
        key = os.urandom(KEY_BYTES)
        if _text_passphrase(key) is None:
            return key


def _aes_key(key: bytes, kdf: int, salt: bytes, scrypt: ScryptParams) -> bytes:
    """The AES-256 key: `key` itself (KDF_RAW_KEY) or scrypt(passphrase, salt)."""
    if kdf == KDF_RAW_KEY:
        return key
    Scrypt = _crypto()[3]
    return Scrypt(salt=salt, length=KEY_BYTES, n=1 << scrypt.log2_n, r=scrypt.r,
                  p=scrypt.p).derive(key)


def _check_key(key: bytes) -> int:
    """The KDF id for `key`; RkcError for a raw key that is not 32 bytes."""
    if isinstance(key, Passphrase):
        return KDF_SCRYPT
    if len(key) != KEY_BYTES:
        raise RkcError(f"encryption key of {len(key)} bytes, expected {KEY_BYTES} (or a "
                       f"passphrase from read_key)")
    return KDF_RAW_KEY


def encrypt_rknn(data: bytes, key: bytes, scrypt: ScryptParams = DEFAULT_SCRYPT) -> bytes:
    """`data` (a plain .rknn file) encrypted in the format above with a fresh nonce (and
    salt, for a passphrase). `decrypt_rknn(encrypt_rknn(d, k), k) == d`."""
    Cipher, algorithms, modes, _, _ = _crypto()
    kdf = _check_key(key)
    if kdf == KDF_SCRYPT:
        if scrypt.problem():
            raise RkcError(scrypt.problem())
        salt, cost = os.urandom(SALT_BYTES), (scrypt.log2_n, scrypt.r, scrypt.p)
    else:
        salt, cost = bytes(SALT_BYTES), (0, 0, 0)
    nonce = os.urandom(NONCE_BYTES)
    header = HEADER.pack(MAGIC, FORMAT_VERSION, CIPHER_AES_256_GCM, kdf, *cost, 0, salt,
                         nonce, 0, len(data), bytes(8))
    encryptor = Cipher(algorithms.AES(_aes_key(key, kdf, salt, scrypt)),
                       modes.GCM(nonce)).encryptor()
    encryptor.authenticate_additional_data(header)
    body = encryptor.update(bytes(data)) + encryptor.finalize()
    return header + body + encryptor.tag


def _header_problem(data: bytes) -> str | None:
    """What is wrong with the header of encrypted `data` (offset first), None if nothing."""
    if len(data) < HEADER.size + TAG_BYTES:
        return f"truncated: {len(data)} bytes, shorter than header and tag " \
               f"({HEADER.size + TAG_BYTES})"
    (magic, version, cipher, kdf, log2_n, r, p, reserved1, salt, _, reserved2, length,
     reserved3) = HEADER.unpack_from(data)
    if magic != MAGIC:
        return f"byte 0: magic {magic!r}, expected {MAGIC!r}"
    if version != FORMAT_VERSION:
        return f"byte 8: format version {version} is not supported (this rkc reads " \
               f"{FORMAT_VERSION})"
    if cipher != CIPHER_AES_256_GCM:
        return f"byte 10: unknown cipher {cipher}"
    if kdf not in (KDF_RAW_KEY, KDF_SCRYPT):
        return f"byte 11: unknown key derivation {kdf}"
    if kdf == KDF_RAW_KEY and (log2_n, r, p, salt) != (0, 0, 0, bytes(SALT_BYTES)):
        return "byte 12: raw-key file with scrypt parameters or salt set"
    if kdf == KDF_SCRYPT and ScryptParams(log2_n, r, p).problem():
        return "byte 12: " + ScryptParams(log2_n, r, p).problem()
    if reserved1 or reserved2 or any(reserved3):
        return "bytes 15, 44..47, 56..63: reserved bytes are not zero"
    if length != len(data) - HEADER.size - TAG_BYTES:
        return f"byte 48: plain length {length}, but the file holds " \
               f"{len(data) - HEADER.size - TAG_BYTES} bytes of ciphertext (truncated?)"
    return None


def decrypt_rknn(data: bytes, key: bytes) -> bytes:
    """The plain .rknn file inside encrypted `data`. RkcError (one line) for a bad header,
    a key of the wrong kind, or a wrong key / any changed byte ("wrong key or corrupted
    file"); nothing is returned unless the whole file authenticates."""
    data = bytes(data)
    problem = _header_problem(data)
    if problem:
        raise RkcError(f"encrypted model, {problem} (corrupted file?)")
    Cipher, algorithms, modes, _, InvalidTag = _crypto()
    _, _, _, kdf, log2_n, r, p, _, salt, nonce, _, _, _ = HEADER.unpack_from(data)
    if kdf != _check_key(key):
        wanted = "a passphrase" if kdf == KDF_SCRYPT else f"a raw {KEY_BYTES}-byte key"
        given = "a passphrase" if isinstance(key, Passphrase) else "a raw key"
        raise RkcError(f"encrypted model needs {wanted}, the key given is {given}")
    aes_key = _aes_key(key, kdf, salt, ScryptParams(log2_n, r, p))
    tag = data[-TAG_BYTES:]
    decryptor = Cipher(algorithms.AES(aes_key), modes.GCM(nonce, tag)).decryptor()
    decryptor.authenticate_additional_data(data[:HEADER.size])
    plain = decryptor.update(data[HEADER.size:-TAG_BYTES])
    try:
        plain += decryptor.finalize()
    except InvalidTag:
        raise RkcError(f"encrypted model: {CORRUPTED} (authentication failed)") from None
    return plain
