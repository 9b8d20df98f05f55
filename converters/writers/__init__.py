"""Writers of foreign model files (Caffe .caffemodel/.binaryproto, MATLAB .mat) for tests and benchmarks.

They share no code with the readers (:mod:`converters.caffe`, :mod:`converters.matfile`), so a mistake in a
reader cannot hide behind the same mistake here; they use numpy (and h5py for MAT v7.3, scipy for MAT v5) only.
"""
