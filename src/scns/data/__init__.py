"""scns.data: datasets as uint8 tensors, device-resident loading and batched augmentation.

Importing this package registers the built-in datasets (cifar10, cifar100, tiny_imagenet, digits,
folder).
"""

from scns.data.augment import BatchTransform, crop_flip, normalize, random_crop_flip, sample_crop_flip
from scns.data.batch import Batch
from scns.data.datasets import (
    DATASETS,
    DatasetSpec,
    dataset_num_classes,
    get_spec,
    list_datasets,
    load_dataset,
    register_dataset,
)
from scns.data.download import Archive, download_and_extract
from scns.data.errors import DatasetError
from scns.data.imageset import ImageSet, carve_validation
from scns.data.loader import DeviceLoader

# Imported for their registrations.
from scns.data import cifar, digits, folder, tiny_imagenet  # noqa: E402, F401  isort: skip

__all__ = [
    "DATASETS",
    "Archive",
    "Batch",
    "BatchTransform",
    "DatasetError",
    "DatasetSpec",
    "DeviceLoader",
    "ImageSet",
    "carve_validation",
    "crop_flip",
    "dataset_num_classes",
    "download_and_extract",
    "get_spec",
    "list_datasets",
    "load_dataset",
    "normalize",
    "random_crop_flip",
    "register_dataset",
    "sample_crop_flip",
]
