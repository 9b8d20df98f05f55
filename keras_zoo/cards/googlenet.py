"""The card of GoogLeNet: BVLC's replication and the Princeton GoogLeNet MatConvNet imported."""

from keras_zoo.cards.records import ModelCard, PortRules
from keras_zoo.cards.sources import BVLC_LICENSE, bvlc, ilsvrc, input_spec, matconvnet

# The Princeton GoogLeNet (train_val_googlenet.prototxt, which MatConvNet's import-googlenet.sh converts) names
# its inception modules icp1..icp9 (= BVLC's 3a..5b) and their convolutions out0 (1x1), reduction1 (3x3
# reduce), out1 (3x3), reduction2 (5x5 reduce), out2 (5x5), out3 (pool projection).
PRINCETON_INCEPTION_BRANCHES = {"out0": "1x1", "reduction1": "3x3_reduce", "out1": "3x3",
                                "reduction2": "5x5_reduce", "out2": "5x5", "out3": "pool_proj"}
PRINCETON_GOOGLENET_RENAME = {
    "conv1": "conv1/7x7_s2", "reduction2": "conv2/3x3_reduce", "conv2": "conv2/3x3", "cls3_fc": "loss3/classifier",
    **{f"icp{index}_{branch}": f"inception_{module}/{bvlc_name}"
       for index, module in enumerate(("3a", "3b", "4a", "4b", "4c", "4d", "4e", "5a", "5b"), start=1)
       for branch, bvlc_name in PRINCETON_INCEPTION_BRANCHES.items()},
}
# its auxiliary classifiers, kept by the import (only the losses are removed); bvlc_googlenet's deploy net has none
PRINCETON_GOOGLENET_AUXILIARY = tuple(f"cls{head}_{layer}" for head in (1, 2) for layer in ("reduction", "fc1", "fc2"))

GOOGLENET_CARD = ModelCard(
    name="GoogLeNet", aliases=("bvlc_googlenet", "googlenet-dag", "imagenet-googlenet-dag", "inception-v1"),
    task="classification",
    paper="Going Deeper with Convolutions, C. Szegedy, W. Liu, Y. Jia, P. Sermanet, S. Reed, D. Anguelov, "
          "D. Erhan, V. Vanhoucke and A. Rabinovich, CVPR 2015",
    license=BVLC_LICENSE,
    weights=(
        bvlc("bvlc_googlenet", "405fc5acd08a3bb12de8ee5e23a96bec22f08204", (224, 224), 68.7, 88.9,
             mean=(104.0, 117.0, 123.0)),
        matconvnet("matconvnet", "imagenet-googlenet-dag.mat", "04cd60e8ea6a0d47742206749f624ec8",
                   input_spec("RGB", "meta", (224, 224)), "imagenet-caffe", metrics=ilsvrc(34.2, 12.9, 501.8),
                   port=PortRules(rename=PRINCETON_GOOGLENET_RENAME, unused=PRINCETON_GOOGLENET_AUXILIARY),
                   notes="the Princeton GoogLeNet (other weights and layer names than BVLC's; same architecture; "
                         "its two auxiliary classifiers are not loaded)"),
    ))
