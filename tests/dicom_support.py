"""DICOM files written with pydicom for the tests (``test_dicom``, ``test_widgets``, ``test_browser``). Not a
test module."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

CR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.1"


def cr_dataset(
    stored: np.ndarray, photometric: str = "MONOCHROME2", bits_stored: int | None = None, **elements
):
    """A grayscale CR dataset holding ``stored`` (its dtype gives Bits Allocated and Pixel Representation)."""
    ds = Dataset()
    ds.SOPClassUID = CR_IMAGE_STORAGE
    ds.SOPInstanceUID = generate_uid()
    ds.Modality = "CR"
    ds.Rows, ds.Columns = stored.shape[-2:]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated = stored.dtype.itemsize * 8
    ds.BitsStored = bits_stored or ds.BitsAllocated
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = int(stored.dtype.kind == "i")
    for keyword, value in elements.items():
        setattr(ds, keyword, value)
    ds.PixelData = np.ascontiguousarray(stored).astype(stored.dtype.newbyteorder("<")).tobytes()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return ds


def write_dicom(path: Path, ds: Dataset, preamble: bool = True, meta: bool = True) -> Path:
    """Write ``ds`` as a DICOM file: with the 128-byte preamble and ``DICM``, or raw (with or without meta)."""
    if preamble:
        pydicom.dcmwrite(path, FileDataset(path, ds, file_meta=ds.file_meta, preamble=b"\0" * 128))
    elif meta:
        ds.preamble = None
        pydicom.dcmwrite(path, ds, enforce_file_format=False)
    else:
        raw = Dataset(ds)  # the same elements, no file meta: implicit VR little endian, the DICOM default
        pydicom.dcmwrite(path, raw, enforce_file_format=False, implicit_vr=True, little_endian=True)
    return path
