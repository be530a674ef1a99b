"""Data: generated shapes with exact masks, multi-instance canvases, Fashion-MNIST, photos."""
from actmatch_lite.data.canvases import Canvases, make_canvases
from actmatch_lite.data.fmnist import FMNIST_CLASSES, load_fashion_mnist, load_fmnist_subset
from actmatch_lite.data.photos import (PHOTO_CREDITS, PHOTOS, MultiInstancePhoto, load_photo, load_texture,
                                       make_multi_instance_photo, make_photo_composites, to_image_tensor)
from actmatch_lite.data.shapes import SHAPE_CLASSES, ShapesData, make_shapes

__all__ = ["Canvases", "FMNIST_CLASSES", "MultiInstancePhoto", "PHOTOS", "PHOTO_CREDITS", "SHAPE_CLASSES",
           "ShapesData", "load_fashion_mnist", "load_fmnist_subset", "load_photo", "load_texture",
           "make_canvases", "make_multi_instance_photo", "make_photo_composites", "make_shapes",
           "to_image_tensor"]
