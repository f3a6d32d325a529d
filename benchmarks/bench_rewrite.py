"""erase_relu against what a user writes by hand today, side by side.

Baseline: `keras.models.clone_model(model)` then `clone.set_weights(...)`.
Measured: `erase_relu(model)` (weights copied) and
`erase_relu(model, share_weights=True)`. Rounds alternate the three so noise
hits them alike; the median of each is reported with the ratios.

keras.applications models are named as there (`ResNet152`); KerasHub
backbones (`hub:ResNet50`, ...; needs the `hub` extra) are built from the
configs of the presets named in `HUB_MODELS`, with random weights (no
download). For them the baseline returns a plain Functional, `erase_relu`
the backbone's own class (`keras_eraserelu.core.hub`).

    python benchmarks/bench_rewrite.py [--models ResNet152,hub:ResNet50,...]
        [--rounds 3] [--out results.json]

Goal: erase_relu <= 1.0x of the baseline, share_weights=True <= 0.3x.
"""

import argparse
import functools
import gc
import json
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402

import keras_eraserelu as ker  # noqa: E402

DEFAULT_MODELS = "ResNet152,DenseNet201,InceptionV3,VGG16"
IMAGE = (224, 224, 3)
# name: (KerasHub backbone class, config of the preset in the comment,
# placement: the kinds its blocks use)
HUB_MODELS = {
    "hub:ResNet50": (  # resnet_50_imagenet
        "ResNetBackbone",
        {"input_conv_filters": [64], "input_conv_kernel_sizes": [7],
         "stackwise_num_filters": [64, 128, 256, 512],
         "stackwise_num_blocks": [3, 4, 6, 3], "stackwise_num_strides": [1, 2, 2, 2],
         "block_type": "bottleneck_block", "image_shape": IMAGE},
        {},
    ),
    "hub:ResNet50V2": (  # resnet_v2_50_imagenet
        "ResNetBackbone",
        {"input_conv_filters": [64], "input_conv_kernel_sizes": [7],
         "stackwise_num_filters": [64, 128, 256, 512],
         "stackwise_num_blocks": [3, 4, 6, 3], "stackwise_num_strides": [1, 2, 2, 2],
         "block_type": "bottleneck_block", "use_pre_activation": True,
         "image_shape": IMAGE},
        {},
    ),
    "hub:DenseNet121": (  # densenet_121_imagenet
        "DenseNetBackbone",
        {"stackwise_num_repeats": [6, 12, 24, 16], "image_shape": IMAGE},
        {},
    ),
    "hub:VGG16": (  # vgg_16_imagenet
        "VGGBackbone",
        {"stackwise_num_repeats": [2, 2, 3, 3, 3],
         "stackwise_num_filters": [64, 128, 256, 512, 512], "image_shape": IMAGE},
        {},
    ),
    "hub:EfficientNetB0": (  # efficientnet_b0_ra_imagenet
        "EfficientNetBackbone",
        {"stackwise_width_coefficients": [1.0] * 7,
         "stackwise_depth_coefficients": [1.0] * 7,
         "stackwise_kernel_sizes": [3, 3, 5, 3, 5, 5, 3],
         "stackwise_num_repeats": [1, 2, 2, 3, 3, 4, 1],
         "stackwise_input_filters": [32, 16, 24, 40, 80, 112, 192],
         "stackwise_output_filters": [16, 24, 40, 80, 112, 192, 320],
         "stackwise_expansion_ratios": [1, 6, 6, 6, 6, 6, 6],
         "stackwise_squeeze_and_excite_ratios": [0.25] * 7,
         "stackwise_strides": [1, 2, 2, 2, 1, 2, 1],
         "stackwise_block_types": ["v1"] * 7, "input_shape": IMAGE},
        {"kinds": "silu"},
    ),
    "hub:CSPDarkNet53": (  # csp_darknet_53_ra_imagenet
        "CSPNetBackbone",
        {"stem_filters": 32, "stem_kernel_size": 3, "stem_strides": 1,
         "stackwise_depth": [1, 2, 8, 8, 4], "stackwise_strides": 2,
         "stackwise_num_filters": [64, 128, 256, 512, 1024],
         "block_type": "dark_block", "stage_type": "csp",
         "block_ratio": [1.0, 0.5], "bottle_ratio": [1.0, 0.5],
         "expand_ratio": [2.0, 1.0], "stem_padding": "same", "image_shape": IMAGE},
        {"kinds": "leaky"},
    ),
}  # fmt: skip
DEFAULT_HUB_MODELS = ",".join(HUB_MODELS)


def build(name):
    """The model to rewrite and the placement arguments for erase_relu."""
    if name not in HUB_MODELS:
        return getattr(keras.applications, name)(weights=None), {}
    import keras_hub

    class_name, config, placement = HUB_MODELS[name]
    return getattr(keras_hub.models, class_name)(**config), placement


def baseline(model):
    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    return clone


def timed(function, model):
    gc.collect()
    start = time.perf_counter()
    result = function(model)
    elapsed = time.perf_counter() - start
    del result
    return elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=f"{DEFAULT_MODELS},{DEFAULT_HUB_MODELS}")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", help="also write the rows to this JSON file")
    args = parser.parse_args()
    print(f"keras {keras.__version__}, {args.rounds} rounds, median seconds")
    print(
        f"{'model':<18} {'baseline':>9} {'erase':>9} {'share':>9} "
        f"{'erase/base':>11} {'share/base':>11}"
    )
    rows = []
    for name in args.models.split(","):
        model, placement = build(name)
        candidates = {
            "clone+set_weights": baseline,
            "erase_relu": functools.partial(ker.erase_relu, **placement),
            "erase_relu(share)": functools.partial(
                ker.erase_relu, share_weights=True, **placement
            ),
        }
        times = {key: [] for key in candidates}
        for _ in range(args.rounds):
            for key, function in candidates.items():
                times[key].append(timed(function, model))
        base, erase, share = (statistics.median(times[k]) for k in candidates)
        print(
            f"{name:<18} {base:9.2f} {erase:9.2f} {share:9.2f} "
            f"{erase / base:10.2f}x {share / base:10.2f}x",
            flush=True,
        )
        rows.append({"model": name, "class": type(model).__name__,
                     "baseline_s": round(base, 3), "erase_s": round(erase, 3),
                     "share_s": round(share, 3), "erase_ratio": round(erase / base, 3),
                     "share_ratio": round(share / base, 3),
                     "rounds": args.rounds})  # fmt: skip
        del model
        keras.backend.clear_session()
    if args.out:
        with open(args.out, "w") as handle:
            json.dump({"keras": keras.__version__, "cpu_count": os.cpu_count(),
                       "results": rows}, handle, indent=2)  # fmt: skip


if __name__ == "__main__":
    main()
