"""tools/benchmark.py's interleaved Keras speeds (its part 2): a line per builder and batch, each builder against
keras.applications' model of the same name, the unfolded form only where there are batch norms to fold. (No speed
is asserted: the figures are the benchmark's to print.)"""

import re

from tests.helpers import load_tool


def test_interleaved_speeds_compare_each_builder_with_its_keras_applications_model(offline_home, capsys):
    """Offline with no weights: each builder's cache is written from untrained weights (the speed is the same)."""
    benchmark = load_tool("benchmark")
    status = benchmark.main(["--skip-load", "--table-models", "--speed-models", "ResNet50", "VGG16",
                             "--batches", "1", "2", "--seconds", "0"])
    out, err = capsys.readouterr()
    assert status == 0, err
    figure = r"(\d+\.\d) images/s as built, keras\.applications (\d+\.\d): ratio (\d+\.\d\d) \(target >= 1\.1\)"
    lines = out.strip().splitlines()
    assert [line.split(",")[0] for line in lines] == [
        "ResNet50 batch  1", "ResNet50 batch  2", "VGG16 batch  1", "VGG16 batch  2"], out
    for line in lines:
        assert all(float(value) > 0 for value in re.search(figure, line).groups()), line
        assert ("; unfolded " in line) == line.startswith("ResNet50"), line  # VGG16 has no batch norm
