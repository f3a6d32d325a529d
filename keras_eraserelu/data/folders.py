"""A directory of class folders, read into memory once.

Two layouts: `DIR/<class>/<image>` (a stratified `validation_split` is held
out as "test"), or `DIR/train/<class>/...` with `DIR/test/` (or
`validation/`, `val/`) beside it. `keras.utils.image_dataset_from_directory`
lists and decodes the images (.png, .jpg, .jpeg, .bmp, .gif), which are kept
as uint8 arrays; the class names are the folder names, sorted. Their sizes
are read from the files' headers first (Pillow): images of mixed sizes need
`image_size`, and grayscale folders stay one channel.

Example:

```python
arrays, described = read_folder("photos/", validation_split=0.2, image_size=None)
described["class_names"]     # ['cat', 'dog']
```
"""

from __future__ import annotations

import os

import numpy as np

from keras_eraserelu.data.data_source import check_image_size

IMAGE_EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")
TEST_FOLDERS = ("test", "validation", "val")
_GRAY_MODES = ("1", "L", "I", "I;16", "F")


def read_folder(path, validation_split, image_size):
    """The `{"train": (x, y), "test": (x, y)}` uint8 arrays of a folder of
    class folders, and the record fields (path, class names, layout).

    Raises:
        ValueError: for a folder without class folders of images, images of
            mixed sizes without `image_size`, or train and test folders with
            other classes.
    """
    from keras_eraserelu.data.arrays import split_arrays

    layout = _layout(path)
    parts = {"train": os.path.join(path, "train"), "test": layout} if layout else {
        "train": path}  # fmt: skip
    files = {split: _images(folder) for split, folder in parts.items()}
    size, color_mode = _size_and_mode(path, files, image_size)
    class_names, arrays = None, {}
    for split, folder in parts.items():
        x, y, class_names = _decode(folder, size, color_mode, class_names)
        arrays[split] = (x, y)
    if not layout:
        arrays = split_arrays(*arrays["train"], validation_split)
    described = {
        "path": os.path.abspath(path),
        "class_names": class_names,
        "layout": f"train/ and {os.path.basename(layout)}/" if layout else
        f"class folders, validation_split={validation_split}",
    }  # fmt: skip
    return arrays, described


def _layout(path):
    """The test folder of a `train/` + `test/` layout, or None."""
    if not os.path.isdir(os.path.join(path, "train")):
        return None
    for name in TEST_FOLDERS:
        if os.path.isdir(os.path.join(path, name)):
            return os.path.join(path, name)
    raise ValueError(
        f"The folder {path!r} has a train/ folder but no test folder beside it: "
        f"expected one of {[n + '/' for n in TEST_FOLDERS]}, or class folders "
        "directly in it (then `validation_split` is held out)."
    )


def _images(folder):
    """{class folder: [image paths]} of `folder`, which must have some."""
    classes = sorted(
        name for name in os.listdir(folder) if os.path.isdir(os.path.join(folder, name))
    )
    found = {
        name: sorted(
            os.path.join(folder, name, file)
            for file in os.listdir(os.path.join(folder, name))
            if file.lower().endswith(IMAGE_EXTENSIONS)
        )
        for name in classes
    }
    if sum(map(len, found.values())) == 0:
        raise ValueError(
            f"The folder {folder!r} holds no class folders of images: expected "
            f"{folder}/<class name>/<image> with images ending in "
            f"{list(IMAGE_EXTENSIONS)}. Found folders: {classes or 'none'}."
        )
    return found


def _size_and_mode(path, files, image_size):
    """(height, width) to decode at, and "grayscale" or "rgb"."""
    from PIL import Image

    sizes, modes = {}, set()
    for found in files.values():
        for image_path in (p for paths in found.values() for p in paths):
            with Image.open(image_path) as image:
                sizes.setdefault(image.size, image_path)
                modes.add(image.mode)
    mode = "grayscale" if modes <= set(_GRAY_MODES) else "rgb"
    if image_size is not None:
        return check_image_size(image_size), mode
    if len(sizes) > 1:
        (w1, h1), first = next(iter(sizes.items()))
        (w2, h2), second = list(sizes.items())[1]
        raise ValueError(
            f"The images of {path!r} have {len(sizes)} different sizes, such as "
            f"{first!r} ({h1}x{w1}) and {second!r} ({h2}x{w2}); pass "
            "image_size=(height, width) (`--image-size`) to resize them all."
        )
    (width, height), _ = next(iter(sizes.items()))
    return (height, width), mode


def _decode(folder, size, color_mode, class_names):
    """uint8 images, int labels and class names of one split folder."""
    import keras

    dataset = keras.utils.image_dataset_from_directory(
        folder,
        labels="inferred",
        label_mode="int",
        class_names=class_names,
        color_mode=color_mode,
        batch_size=None,
        image_size=size,
        shuffle=False,
        verbose=False,
    )
    images, labels = [], []
    for x, y in dataset.batch(256).as_numpy_iterator():
        images.append(np.clip(np.rint(x), 0, 255).astype("uint8"))
        labels.append(y.astype("int64"))
    return np.concatenate(images), np.concatenate(labels), list(dataset.class_names)
