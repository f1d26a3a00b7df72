"""The simulated DRAM: named byte regions placed at fixed addresses.

Invariants: regions never overlap; every access (a strided view of `shape` elements of
`dtype` with byte `strides`) lies wholly inside one region, otherwise an RkcError names
the access (`what`), its address range and the regions; reads and writes go through
numpy views of the region's bytes, never element by element.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rkc.errors import RkcError


@dataclass
class Region:
    """`data` (uint8, writable) lives at byte address `base`."""

    name: str
    base: int
    data: np.ndarray

    @property
    def end(self) -> int:
        return self.base + self.data.size


class Memory:
    """A sparse 32-bit address space made of `Region`s."""

    def __init__(self) -> None:
        self.regions: list[Region] = []

    def add(self, name: str, base: int, content: bytes | int) -> Region:
        """A region at `base` holding `content` (bytes) or that many zero bytes."""
        data = (np.zeros(content, np.uint8) if isinstance(content, int)
                else np.frombuffer(bytes(content), np.uint8).copy())
        region = Region(name, base, data)
        if base < 0 or region.end > 1 << 32:
            raise RkcError(f"memory region {name} at {base:#x}+{data.size} does not fit "
                           "32-bit addresses")
        for other in self.regions:
            if base < other.end and other.base < region.end:
                raise RkcError(f"memory region {name} at {base:#x} overlaps {other.name}")
        self.regions.append(region)
        return region

    def region(self, name: str) -> Region:
        for r in self.regions:
            if r.name == name:
                return r
        raise KeyError(name)

    def _locate(self, address: int, nbytes: int, what: str) -> tuple[Region, int]:
        for r in self.regions:
            if r.base <= address and address + nbytes <= r.end:
                return r, address - r.base
        where = ", ".join(f"{r.name} {r.base:#x}..{r.end:#x}" for r in self.regions)
        raise RkcError(f"{what}: bytes {address:#x}..{address + nbytes:#x} lie outside "
                       f"every memory region ({where})")

    def view(self, address: int, shape: tuple[int, ...], strides: tuple[int, ...],
             dtype: np.dtype | type, what: str) -> np.ndarray:
        """A writable strided view; RkcError unless it lies inside one region."""
        itemsize = np.dtype(dtype).itemsize
        if any(n <= 0 for n in shape):
            raise RkcError(f"{what}: empty access of shape {list(shape)}")
        if any(s < 0 for s in strides):
            raise RkcError(f"{what}: negative stride in {list(strides)}")
        extent = sum((n - 1) * s for n, s in zip(shape, strides, strict=True)) + itemsize
        region, offset = self._locate(address, extent, what)
        return np.ndarray(shape, dtype, buffer=region.data, offset=offset, strides=strides)

    def read_bytes(self, address: int, nbytes: int, what: str) -> bytes:
        region, offset = self._locate(address, nbytes, what)
        return region.data[offset:offset + nbytes].tobytes()

    def write_bytes(self, address: int, data: bytes, what: str) -> None:
        region, offset = self._locate(address, len(data), what)
        region.data[offset:offset + len(data)] = np.frombuffer(data, np.uint8)
