"""The built-in model zoo: per-modality encoders, fusion blocks, heads and synthetic DAGs.

Modules: :mod:`~.registry` (THE registry: one :class:`EncoderRecord` per encoder, the
fusion and head builders, :func:`build_multimodal`, :func:`payload_bytes_for`), one module
per modality (:mod:`~.vision` ResNet-18, :mod:`~.audio` VGGish, :mod:`~.lidar` PointNet,
:mod:`~.text` a BERT-style transformer, :mod:`~.vector` an MLP), :mod:`~.fusion`,
:mod:`~.heads`, :mod:`~.synthetic` (seeded random DAGs) and :mod:`~.common` (what the
builders share). Imports :mod:`owin_cosim.workload.graph` only. To add an encoder, write
its builder in the module of its modality and add its record to
:data:`~owin_cosim.workload.zoo.registry.ENCODER_RECORDS`.

Every builder *adds* layers to a :class:`~owin_cosim.workload.graph.ModelGraph`, so several
encoders (one per device) coexist in one multimodal graph. Encoder layer names are
prefixed with the device name (``camera/conv1``) and carry ``group="encoder:<device>"``;
the layers that read the device payload are registered with ``inputs_from=<device>``.
Fusion layers carry ``group="fusion"`` and head layers ``group="head"``.

Operation counts are multiply-accumulates (MACs) of convolutions and matrix products,
plus one operation per window tap for pooling and per element (per extra operand) for
elementwise layers (see :attr:`~owin_cosim.workload.graph.Layer.macs`). Batch norm is assumed
folded into the convolutions and activations (ReLU, GELU, tanh) are not modelled as layers.
Reference counts at the default parameters (conv + matmul MACs / all layers):

====================  ======================  =====================================
``resnet18``          1,813,561,344 (+fc:      torchvision ResNet-18: 1.814 G MACs
                      1,814,073,344)           ("1.8 GFLOPs"); all layers 1,816,145,408
                                               (1,816,657,408 with the FC)
``audio_cnn``         863,895,552              VGGish on 96 x 64 log-mel: 0.864 G MACs;
                                               all layers 864,632,832
``pointnet``          447,360,256              PointNet with both T-Nets, 1,024 points,
                                               without the 40-class MLP (paper: 440 M
                                               FLOPs/sample); all layers 450,505,984
``text_transformer``  436,273,152              BERT-mini-like (4 x 256, 4 heads, FFN
                                               1024, 128 tokens); all layers 437,125,120
====================  ======================  =====================================

Examples
--------
>>> g = build_multimodal("av", {"camera": ("resnet18", {}), "mic": ("audio_cnn", {})})
>>> g.devices()
['camera', 'mic']
>>> sorted({layer.group for layer in g.layers()})
['encoder:camera', 'encoder:mic', 'fusion', 'head']
"""

from owin_cosim.workload.zoo.audio import audio_cnn
from owin_cosim.workload.zoo.common import (
    EncoderBuilder,
    EncoderOutput,
    FusionBuilder,
    HeadBuilder,
)
from owin_cosim.workload.zoo.fusion import attention_fusion, concat_fusion
from owin_cosim.workload.zoo.heads import classifier_head
from owin_cosim.workload.zoo.lidar import pointnet
from owin_cosim.workload.zoo.registry import (
    DEFAULT_ENCODER_BY_MODALITY,
    ENCODER_RECORDS,
    ENCODERS,
    FUSIONS,
    HEADS,
    EncoderRecord,
    UnknownNameError,
    build_multimodal,
    payload_bytes_for,
)
from owin_cosim.workload.zoo.synthetic import synthetic_dag
from owin_cosim.workload.zoo.text import text_transformer
from owin_cosim.workload.zoo.vector import mlp_encoder
from owin_cosim.workload.zoo.vision import resnet18

__all__ = [
    "DEFAULT_ENCODER_BY_MODALITY",
    "ENCODERS",
    "ENCODER_RECORDS",
    "FUSIONS",
    "HEADS",
    "EncoderBuilder",
    "EncoderOutput",
    "EncoderRecord",
    "FusionBuilder",
    "HeadBuilder",
    "UnknownNameError",
    "attention_fusion",
    "audio_cnn",
    "build_multimodal",
    "classifier_head",
    "concat_fusion",
    "mlp_encoder",
    "payload_bytes_for",
    "pointnet",
    "resnet18",
    "synthetic_dag",
    "text_transformer",
]
