"""Reproduce the published numbers on your own data: ILSVRC top-1/top-5 error and FCN segmentation scores.

Modules, one job each: :mod:`~keras_zoo.evaluate.datasets` (class folders, list files, PASCAL VOC folders),
:mod:`~keras_zoo.evaluate.pipeline` (prefetching, batching, progress), :mod:`~keras_zoo.evaluate.outputs`
(running a model, its class scores), :mod:`~keras_zoo.evaluate.fully_convolutional` (fully connected layers as
convolutions, free input sizes), :mod:`~keras_zoo.evaluate.metrics` (top-k, confusion matrix, the FCN
metrics), :mod:`~keras_zoo.evaluate.classification` and :mod:`~keras_zoo.evaluate.segmentation` (the
protocols), :mod:`~keras_zoo.evaluate.reports` (tables, JSON). The command is ``tools/evaluate.py``.

Protocols
---------
* **Centre crop** (the seed's ILSVRC table, each model card's ``preprocessing``): resize the image (shorter side
  to ``resize``, or both sides to ``[H, W]``), take the central ``input_size`` crop, classify once.
* **Dense multi-scale** (VGG's evaluation, Simonyan & Zisserman 2014, Sec. 3.2): the fully connected layers are
  run as convolutions (:func:`~keras_zoo.evaluate.fully_convolutional.to_fully_convolutional`) over the whole
  image rescaled to each shorter side ``Q`` in ``scales`` (256, 384, 512); the per-position class posteriors
  are averaged over positions, over the image and its horizontal flip, and over the scales.
* **Segmentation** (the FCN paper's Sec. 5 metrics, with ``n_ij`` the pixels of class ``i`` predicted as ``j``
  and ``t_i = sum_j n_ij``): pixel accuracy ``sum_i n_ii / sum_i t_i``; mean accuracy
  ``mean_i n_ii / t_i``; mean IU ``mean_i n_ii / (t_i + sum_j n_ji - n_ii)``; frequency-weighted IU. Pixels
  labelled 255 (VOC "void") are ignored; a class that neither occurs nor is predicted is left out of the means.
  Note: the seed's FCN table (MatConvNet's page) heads its 4th column "Mean pix. accuracy" and its 5th "Pixel
  accuracy", but its values (89.12 / 73.28 for FCN-32s) are the FCN paper's pixel accuracy and mean accuracy in
  that order; :func:`~keras_zoo.evaluate.reports.format_segmentation_table` keeps the seed's column order with
  the paper's names.

Models take RGB 0..255 images (the zoo's models carry their preprocessing inside); pass ``preprocess`` for a
model that expects something else. Label indices are the model's own output order (Caffe's or VGG's ImageNet
order): a folder of class sub-folders named by WordNet id is mapped through the weight source's label set.
"""
