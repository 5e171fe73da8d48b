"""cnnlib.train: fit a tiny model on separable data, evaluate, predict and the modes it uses."""

import numpy as np
import pytest

from cnnlib import nn, optim
from cnnlib.train import History, evaluate, fit, predict

pytestmark = pytest.mark.nn


def _blobs(n=300, seed=0):
    """Three well-separated Gaussian blobs in 2D, float32, with integer labels."""
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0, 3.0], [3.0, -2.0], [-3.0, -2.0]])
    y = rng.integers(0, 3, n)
    x = (centres[y] + 0.6 * rng.standard_normal((n, 2))).astype(np.float32)
    return x, y


def _batches(x, y, batch_size, seed):
    """A fresh shuffled pass over (x, y) per call, like cnnlib.data.batches."""
    rng = np.random.default_rng(seed)

    def epoch():
        order = rng.permutation(len(x))
        for start in range(0, len(x), batch_size):
            index = order[start : start + batch_size]
            yield x[index], y[index]

    return epoch


def _setup(seed=0):
    nn.manual_seed(seed)
    model = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Dropout(0.1), nn.Linear(16, 3))
    return model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1, momentum=0.9)


def test_fit_learns_separable_blobs_quickly(capsys):
    x, y = _blobs()
    x_val, y_val = _blobs(100, seed=1)
    model, loss_fn, opt = _setup()
    history = fit(model, loss_fn, opt, _batches(x, y, 32, seed=0), epochs=5,
                  val_data=(x_val, y_val), progress=False)
    assert isinstance(history, History) and len(history) == 5
    assert len(history.train_accuracy) == len(history.val_accuracy) == 5
    assert history.train_loss[-1] < history.train_loss[0]
    assert history.val_accuracy[-1] >= 0.97
    assert evaluate(model, x_val, y_val) == history.val_accuracy[-1]
    assert capsys.readouterr() == ("", "")


def test_fit_without_validation_and_with_a_list_of_batches():
    x, y = _blobs(64)
    model, loss_fn, opt = _setup()
    batch_list = [(x[:32], y[:32]), (x[32:], y[32:])]
    history = fit(model, loss_fn, opt, batch_list, epochs=3, progress=False)
    assert len(history) == 3 and history.val_accuracy == []
    assert all(0 <= a <= 1 for a in history.train_accuracy)


def test_fit_shows_a_progress_bar_with_the_loss(capsys):
    x, y = _blobs(64)
    model, loss_fn, opt = _setup()
    fit(model, loss_fn, opt, _batches(x, y, 32, seed=0), epochs=2, val_data=(x, y))
    err = capsys.readouterr().err
    assert "epoch 2/2" in err and "loss=" in err and "val=" in err


def test_fit_trains_in_train_mode_and_evaluates_in_eval_mode():
    seen = []

    class Spy(nn.Identity):
        def forward(self, x):
            seen.append((self.training, len(x)))
            return x

    x, y = _blobs(40)
    nn.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 3), Spy())
    opt = optim.SGD(model.parameters(), lr=0.1)
    fit(model, nn.CrossEntropyLoss(), opt, [(x[:20], y[:20]), (x[20:], y[20:])], epochs=1,
        val_data=(x[:7], y[:7]), progress=False)
    assert seen == [(True, 20), (True, 20), (False, 7)]
    assert not model.training  # fit leaves the model ready for predict


def test_evaluate_and_predict_restore_the_mode_they_found():
    model, _, _ = _setup()
    x, y = _blobs(10)
    model.train()
    evaluate(model, x, y, batch_size=3)
    assert all(m.training for m in model.modules())
    labels = predict(model, x, batch_size=4)
    assert labels.shape == (10,) and model.training
    np.testing.assert_array_equal(labels, model.eval()(x).argmax(axis=1))


def test_fit_refuses_a_one_shot_iterator():
    x, y = _blobs(10)
    model, loss_fn, opt = _setup()
    with pytest.raises(TypeError, match="runs dry after one epoch"):
        fit(model, loss_fn, opt, iter([(x, y)]), epochs=2, progress=False)
    with pytest.raises(ValueError, match="gave no batches"):
        fit(model, loss_fn, opt, [], epochs=1, progress=False)
    with pytest.raises(ValueError, match="epochs must be a positive int"):
        fit(model, loss_fn, opt, [(x, y)], epochs=0, progress=False)


def test_fit_trains_a_small_cnn_on_digits_with_the_data_loader():
    pytest.importorskip("sklearn")
    from cnnlib import data

    x_train, y_train, x_test, y_test = data.load_digits()
    nn.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
        nn.ResidualBlock(8, 16, stride=2), nn.Flatten(), nn.Linear(16 * 2 * 2, 10),
    )
    loader = data.BatchLoader(x_train, y_train, batch_size=32, seed=0)
    history = fit(model, nn.CrossEntropyLoss(), optim.Adam(model.parameters(), lr=0.01), loader,
                  epochs=3, val_data=(x_test, y_test), progress=False)
    assert history.val_accuracy[-1] > 0.9
