"""The case study's checks: the LeNet-5 a student builds, one training epoch, and a trained model.

LeNet-5 is built and trained with cnnlib.nn, so these checks run cnnlib's own code: first they
make sure that code is what the files on disk say (no replaced layer, optimiser or loader).
``call`` is the checker's way to call the student's function (see :class:`cnnlib.testing.Checker`).
"""

import sys

import numpy as np

from cnnlib.testing.arguments import _from_array
from cnnlib.testing.compare import _close, _kind, headline
from cnnlib.testing.errors import GradingError
from cnnlib.testing.errors import refuse as _refuse
from cnnlib.testing.inputs import randn
from cnnlib.testing.integrity import _FUNCTION, _HERE, _MODULE, _NDARRAY, _TYPE, _np_array, _same_as_source
from cnnlib.testing.outcome import judge
from cnnlib.testing.specs import CASE_STUDY

_CASE_STUDY_MODULES = ("cnnlib.nn", "cnnlib.functional", "cnnlib.optim", "cnnlib._checks", "cnnlib.data",
                       "cnnlib.geometry")
_DATACLASS_METHODS = ("__init__", "__repr__", "__eq__", "__setattr__", "__delattr__", "__hash__",
                      "__lt__", "__le__", "__gt__", "__ge__")
_MAX_SETTING, _MAX_PARAMETERS = 4096, 10_000_000  # bounds on a model the grader will run
_MAX_ACTIVATION_BYTES = 256 << 20  # the largest feature map or im2col buffer the grader will compute
_LENET_PARAMETERS = 61706  # C1 156 + C3 2,416 + C5 48,120 + F6 10,164 + output 850
_LENET_MAPS = ((6, 28, 28), (6, 14, 14), (16, 10, 10), (16, 5, 5))


def _verify_cnnlib() -> None:
    """Every function and method of the cnnlib modules the case study runs must match its source."""
    __tracebackhide__ = True
    for module_name, module in list(sys.modules.items()):
        if not module_name.startswith(_CASE_STUDY_MODULES) or module is None:
            continue
        if module.__class__ is not _MODULE:
            raise _refuse(f"the module {module_name} has been replaced")
        for key, value in list(module.__dict__.items()):
            home = getattr(value, "__module__", None) if value.__class__ in (_FUNCTION, _TYPE) else None
            if home.__class__ is not str or not home.startswith("cnnlib"):
                continue
            owner = sys.modules.get(home)
            if owner is None or owner.__dict__.get(value.__name__) is not value:
                raise _refuse(f"{module_name}.{key} has been replaced")
            functions = [(key, value)] if value.__class__ is _FUNCTION else [
                (k, f) for k, f in value.__dict__.items() if f.__class__ is _FUNCTION]
            for attribute, function in functions:
                code = function.__code__
                if (value.__class__ is _TYPE and "__dataclass_fields__" in value.__dict__
                        and attribute in _DATACLASS_METHODS and not code.co_filename.startswith(_HERE)):
                    continue  # written by the dataclass decorator, not by cnnlib's source
                if not code.co_filename.startswith(_HERE) or not _same_as_source(code, quick=False):
                    raise _refuse(f"{home}.{value.__name__} has been changed")


def _check_model(model, what: str, batch: int = 2) -> None:
    """The model must be made of cnnlib.nn's own classes, with nothing replaced on the instances."""
    __tracebackhide__ = True
    nn = sys.modules["cnnlib.nn"]
    if not isinstance(model, nn.Module):
        raise GradingError(f"{what}: returned {_kind(model)}, expected a cnnlib.nn module\n"
                           f"  {what} should return a cnnlib.nn module (e.g. nn.Sequential(...)), got "
                           f"{model.__class__.__name__}")
    for module in model.modules():
        kind = module.__class__
        if not kind.__module__.startswith("cnnlib.nn"):
            raise GradingError(f"{what}: the model contains a {kind.__name__} defined outside cnnlib.nn; "
                               "build it from cnnlib.nn's layers")
        for name in ("forward", "backward", "__call__", "parameters"):
            if name in module.__dict__:
                raise _refuse(f"the {kind.__name__} layer's {name} was replaced on the instance")
        for name, value in module.__dict__.items():  # the grader runs this model: no absurd sizes
            sizes = value if value.__class__ is tuple else (value,)
            if any(v.__class__ is int and not 0 <= v <= _MAX_SETTING for v in sizes):
                raise GradingError(f"{what}: the {kind.__name__} layer has {name}={value!r}; settings "
                                   f"outside 0..{_MAX_SETTING} are not a LeNet-5")
    total = sum(p.data.size for p in model.parameters() if p.data.__class__ is _NDARRAY)
    if total > _MAX_PARAMETERS:
        raise GradingError(f"{what}: the model has {total:,} parameters; LeNet-5 has {_LENET_PARAMETERS:,}")
    needed = _largest_buffer(model, batch)
    if needed > _MAX_ACTIVATION_BYTES:
        raise GradingError(f"{what}: a forward pass on {batch} images would need a {needed / 2**20:,.0f} MB "
                           f"buffer (at most {_MAX_ACTIVATION_BYTES >> 20} MB)\n  LeNet-5's largest feature "
                           "map is 6x28x28 per image: check the layers' padding, stride and sizes")


def _pair(value) -> tuple:
    pair = value if value.__class__ is tuple else (value, value)
    if len(pair) != 2 or any(v.__class__ is not int for v in pair):
        raise GradingError(f"a layer's kernel_size, stride, padding or dilation is {value!r}; "
                           "LeNet-5's layers take ints or pairs of ints")
    return pair


def _largest_buffer(model, batch: int, shape: tuple = (1, 32, 32)) -> int:
    """An upper bound, in bytes (float64), on the largest feature map or im2col buffer that a
    forward pass of ``batch`` images of ``shape`` (C, H, W) computes, from the layers' settings
    alone (nothing is run): each layer's output size is bounded by its padding and stride."""
    channels, height, width = shape
    largest = channels * height * width
    for module in model.modules():
        settings = module.__dict__
        if list(module.children()) or "kernel_size" not in settings:
            channels = settings.get("out_features", channels)
            continue
        (kh, kw), (sh, sw) = _pair(settings["kernel_size"]), _pair(settings.get("stride", 1))
        padding = settings.get("padding", 0)
        ph, pw = (kh, kw) if padding.__class__ is str else _pair(padding)
        dh, dw = _pair(settings.get("dilation", 1))
        if module.__class__.__name__ == "ConvTranspose2d":  # grows by the stride
            height = (height - 1) * sh + dh * (kh - 1) + 1 + sh
            width = (width - 1) * sw + dw * (kw - 1) + 1 + sw
        else:
            height, width = (height + 2 * ph) // sh + 1, (width + 2 * pw) // sw + 1
        columns = channels * kh * kw * height * width  # im2col's buffer for this layer's input
        channels = settings.get("out_channels", channels)
        largest = max(largest, columns, channels * height * width)
    return 8 * batch * largest


def _build(call, build_lenet):
    __tracebackhide__ = True
    _verify_cnnlib()
    outcome = call("build_lenet", build_lenet, (), {})
    if outcome.error is not None:
        judge(CASE_STUDY, "build_lenet", "build_lenet()", outcome, None, None, {})
    _check_model(outcome.value, "build_lenet")
    return outcome.value


def check_lenet(call, build_lenet, what: str) -> None:
    """``what``: "output" (a (N, 10) output for (N, 1, 32, 32) images), "parameters" (61,706 of
    them), "layers" (the feature maps 6@28x28, 6@14x14, 16@10x10, 16@5x5) or "backward" (a
    backward pass gives dL/dx like x)."""
    __tracebackhide__ = True
    model = _build(call, build_lenet)
    x = _np_array([0.5] * (2 * 32 * 32), dtype=np.float32).reshape((2, 1, 32, 32))
    if what == "backward":
        try:
            model(x)
            grad = model.backward(_np_array([1.0] * 20, dtype=np.float32).reshape((2, 10)))
        except Exception as error:
            raise GradingError(f"build_lenet: the model's backward pass fails: {error}\n"
                               "  a forward then backward pass through the model fails") from error
        got = _from_array(grad, "build_lenet: model.backward(grad_out)")[0]
        if got != (2, 1, 32, 32):
            raise GradingError(f"build_lenet: model.backward gives shape {got}, expected (2, 1, 32, 32)\n"
                               "  model.backward should return dL/dx, of the shape of x")
    elif what == "output":
        try:
            out = model(x)
        except Exception as error:
            raise GradingError(f"build_lenet: the model fails on a (2, 1, 32, 32) batch: {error}") from error
        got = _from_array(out, "build_lenet: the model's output")[0]
        if got != (2, 10):
            raise GradingError(f"build_lenet: output shape {got}, expected (2, 10)\n"
                               f"  for a batch of shape (2, 1, 32, 32) the model should output (2, 10), one "
                               f"score per digit class, got {got}")
    elif what == "parameters":
        counts = [(module.__class__.__name__, sum(p.data.size for p in module.parameters()))
                  for module in model.modules() if not list(module.children())]
        total = sum(count for _, count in counts)
        if total != _LENET_PARAMETERS:
            listing = ", ".join(f"{name} {count:,}" for name, count in counts if count)
            raise GradingError(
                f"build_lenet: {total:,} parameters, expected {_LENET_PARAMETERS:,}\n"
                f"  LeNet-5 has {_LENET_PARAMETERS:,} parameters (C1 156, C3 2,416, C5 48,120, F6 10,164, "
                f"output 850), this model has {total:,}: {listing}.\n  A conv layer has "
                "C_out (C_in K K + 1), a linear layer out (in + 1).")
    else:
        _check_feature_maps(model, x)


def _check_feature_maps(model, x) -> None:
    """Run the layers one by one; the first feature map of the wrong shape names the problem."""
    __tracebackhide__ = True
    maps, failure = [], None
    for module in model.modules():
        if list(module.children()):
            continue
        try:
            x = module(x)
        except Exception as error:
            failure = (module, tuple(x.shape), error)
            break
        if module.__class__.__name__ in ("Conv2d", "MaxPool2d", "AvgPool2d") and len(maps) < 4:
            maps.append((module.__class__.__name__, tuple(x.shape[1:])))
    for index, ((kind, got), expected) in enumerate(zip(maps, _LENET_MAPS)):
        if got != expected:
            stage = ("C1", "S2", "C3", "S4")[index]
            wanted = "a conv layer" if index % 2 == 0 else "a 2x2 pooling layer"
            missing = "conv" if index % 2 == 0 else "pooling"
            misplaced = (kind == "Conv2d") != (index % 2 == 0)
            kind_note = "" if not misplaced else (
                f" Here {stage} should be {wanted}, not a {kind}: a missing {missing} layer?")
            short = f": a missing {missing} layer?" if misplaced else ""
            raise GradingError(
                f"build_lenet: {stage} maps {got}, expected {expected}{short}\n"
                f"  after {stage} ({kind}) the feature maps should be {expected} (C, H, W), got {got}."
                f"{kind_note}\n  LeNet-5: C1 6@5x5 -> 6x28x28, S2 pool 2x2 -> 6x14x14, C3 16@5x5 -> "
                "16x10x10, S4 pool 2x2 -> 16x5x5, C5 120, F6 84, output 10.")
    if failure is not None:
        module, shape, error = failure
        raise GradingError(f"build_lenet: the model's {module.__class__.__name__} layer fails on an input "
                           f"of shape {shape}: {error}") from error
    if len(maps) < 4:
        raise GradingError(f"build_lenet: {len(maps)} conv and pooling layers before C5, expected 4\n"
                           f"  LeNet-5 has two conv and two pooling layers before C5, this model has "
                           f"{[kind for kind, _ in maps]}")
    _check_activations(model)


_WEIGHTED = ("Conv2d", "Linear")
# neither a layer with weights nor a nonlinearity
_PASSIVE = ("Flatten", "Dropout", "BatchNorm2d", "BatchNorm1d")


def _check_activations(model) -> None:
    """A ReLU after C1, C3, C5 and F6: without them the layers with weights compose to one linear
    map, pooling aside (such a model still learns the digits, so the training tests cannot tell)."""
    __tracebackhide__ = True
    kinds = [m.__class__.__name__ for m in model.modules() if not list(m.children())]
    kinds = [k for k in kinds if k not in _PASSIVE]
    weighted = [i for i, kind in enumerate(kinds) if kind in _WEIGHTED]
    stages = ("C1", "C3", "C5", "F6")
    for stage, (index, following) in zip(stages, zip(weighted, weighted[1:])):
        between = kinds[index + 1:following]
        if "ReLU" not in between:
            raise GradingError(
                f"build_lenet: no ReLU after {stage}: a missing activation?\n"
                f"  after {stage} ({kinds[index]}) comes {', '.join(between) or kinds[following]}, with no "
                "ReLU before the next layer with weights; without the activations the conv and linear "
                "layers compose to a single linear map. LeNet-5 here: ReLU after C1, C3, C5 and F6.")


def _softmax_step(weight, bias, x, y, rows, classes, features):
    """Loss and gradients of mean softmax cross-entropy for a linear layer, in plain Python."""
    loss, grad_w, grad_b = 0.0, [0.0] * len(weight), [0.0] * classes
    import math

    for r in range(rows):
        logits = [bias[k] + sum(weight[k * features + f] * x[r * features + f] for f in range(features))
                  for k in range(classes)]
        top = max(logits)
        exps = [math.exp(v - top) for v in logits]
        total = sum(exps)
        loss += (math.log(total) + top - logits[y[r]]) / rows
        for k in range(classes):
            g = (exps[k] / total - (1.0 if k == y[r] else 0.0)) / rows
            grad_b[k] += g
            for f in range(features):
                grad_w[k * features + f] += g * x[r * features + f]
    return loss, grad_w, grad_b


def _simulate_epoch(weight, bias, batches, lr, zero_grad=True):
    weight, bias = list(weight), list(bias)
    classes, features = len(bias), len(weight) // len(bias)
    acc_w, acc_b, losses = [0.0] * len(weight), [0.0] * classes, []
    for x, y in batches:
        loss, gw, gb = _softmax_step(weight, bias, x, y, len(y), classes, features)
        losses.append((loss, len(y)))
        if zero_grad:
            acc_w, acc_b = gw, gb
        else:
            acc_w = [a + g for a, g in zip(acc_w, gw)]
            acc_b = [a + g for a, g in zip(acc_b, gb)]
        weight = [w - lr * g for w, g in zip(weight, acc_w)]
        bias = [b - lr * g for b, g in zip(bias, acc_b)]
    return weight, bias, losses


def check_train_epoch(call, train_epoch, what: str, lr: float = 0.5, sizes: tuple = (4, 4, 2)) -> None:
    """One epoch of SGD on a 4 -> 3 linear classifier over batches of ``sizes`` examples.

    ``what``: "parameters" (the weights after the epoch) or "loss" (the returned mean loss over
    the epoch's examples)."""
    __tracebackhide__ = True
    _verify_cnnlib()
    nn, optim = sys.modules["cnnlib.nn"], __import__("cnnlib.optim").optim
    weight0, bias0 = randn(3, 4, seed=11), randn(3, seed=12)
    batches, frozen = [], []
    for index, size in enumerate(sizes):
        x = randn(size, 4, seed=20 + index)
        y = _np_array([(3 * index + r) % 3 for r in range(size)], dtype=np.int64)
        batches.append((x, y))
        frozen.append((tuple(x.reshape(-1).tolist()), tuple(y.tolist())))
    model = nn.Linear(4, 3, dtype=np.float64)
    model.weight.data[...] = weight0
    model.bias.data[...] = bias0
    optimizer = optim.SGD(model.parameters(), lr=lr)
    start_w, start_b = tuple(weight0.reshape(-1).tolist()), tuple(bias0.tolist())
    handed = tuple(("object", v) for v in (model, nn.CrossEntropyLoss(), optimizer, batches))
    outcome = call("train_epoch", train_epoch, handed, {})
    described = "train_epoch(model, loss_fn, optimizer, batches)"
    if outcome.error is not None:
        judge(CASE_STUDY, "train_epoch", described, outcome, None, None, {})
    weight, bias, losses = _simulate_epoch(start_w, start_b, frozen, lr)
    if what == "parameters":
        got = (_from_array(model.weight.data, "model.weight.data")[1]
               + _from_array(model.bias.data, "model.bias.data")[1])
        wanted = tuple(weight + bias)
        if len(got) == len(wanted) and all(_close(g, e, 1e-6, 1e-9) for g, e in zip(got, wanted)):
            return
        head = "train_epoch: wrong weights after one epoch (one SGD step per batch)"
        message = ("after one epoch the weights differ from one SGD step per batch (zero_grad, forward, "
                   "loss, backward, step).")
        w2, b2, _ = _simulate_epoch(start_w, start_b, frozen, lr, zero_grad=False)
        if all(_close(g, e, 1e-6, 1e-9) for g, e in zip(got, w2 + b2)):
            head = "train_epoch: wrong weights after one epoch: optimizer.zero_grad() missing"
            message += ("\n  Your weights are exactly what a missing optimizer.zero_grad() gives: backward "
                        "passes add into .grad, so clear it before each batch.")
        elif all(_close(g, e, 1e-9, 1e-12) for g, e in zip(got, start_w + start_b)):
            head = "train_epoch: the weights did not change: step() not called, or before backward?"
            message += ("\n  The weights did not change at all: is optimizer.step() called, and after "
                        "model.backward(...)? Right after zero_grad() the gradients are zero, so a step "
                        "there moves nothing.")
        raise GradingError(f"{head}\n  {described}: {message}")
    value = outcome.value
    if value.__class__ not in (float, int, np.float64, np.float32) or value.__class__ is bool:
        raise GradingError(f"train_epoch: returned {_kind(value)}, expected the mean loss (a float)\n"
                           f"  {described} should return the epoch's mean loss as a float, got {value!r}")
    count = sum(n for _, n in losses)
    expected = sum(loss * n for loss, n in losses) / count
    if _close(float(value), expected, 1e-6, 1e-9):
        return
    head = f"train_epoch: returned {float(value):.6g}, expected {expected:.6g}"
    message = (f"  {described} returned {float(value):.6g}; the mean loss over the epoch's {count} "
               f"examples is {expected:.6g} (each batch's mean loss weighted by its size).")
    for text, candidate in (
            ("the plain average of the batch losses (the last batch is smaller: weight by batch size)",
             sum(loss for loss, _ in losses) / len(losses)),
            ("the sum of the batch losses", sum(loss for loss, _ in losses)),
            ("the last batch's loss", losses[-1][0])):
        if _close(float(value), candidate, 1e-6, 1e-9):
            message += f"\n  Your answer is exactly what you get with {text}."
            head = headline("train_epoch", head.partition(": ")[2], text.partition(" (")[0])
    raise GradingError(f"{head}\n{message}")


def check_training(call, train_lenet, target: float, budget: float, subset: int | None = None) -> None:
    """``train_lenet(x_train, y_train)`` on the digits at 32x32 (the first ``subset`` training
    examples, or all) must return a model reaching ``target`` accuracy on the whole test split,
    within ``budget`` seconds."""
    __tracebackhide__ = True
    _verify_cnnlib()
    x_train, y_train, x_test, y_test = sys.modules["cnnlib.data"].load_digits(size=32)
    if subset is not None:
        x_train, y_train = x_train[:subset].copy(), y_train[:subset].copy()
    labels = y_test.tolist()
    outcome = call("train_lenet", train_lenet, (("object", x_train), ("object", y_train)), {})
    described = "train_lenet(x_train, y_train)"
    if outcome.error is not None:
        judge(CASE_STUDY, "train_lenet", described, outcome, None, None, {})
    model = outcome.value
    _check_model(model, "train_lenet", batch=len(labels))
    model.eval()
    try:
        output = model(x_test)
    except Exception as error:
        raise GradingError(f"train_lenet: the trained model fails on the test images: {error}") from error
    logits = _from_array(output, "train_lenet: the model's output")
    if logits[0] != (len(labels), 10):
        raise GradingError(
            f"train_lenet: output shape {logits[0]}, expected ({len(labels)}, 10)\n"
            f"  the model's output for the test images should be ({len(labels)}, 10), got {logits[0]}")
    correct = 0
    for i, label in enumerate(labels):
        row = logits[1][i * 10:(i + 1) * 10]
        correct += row.index(max(row)) == label
    accuracy = correct / len(labels)
    if accuracy < target:
        trained_on = f" after training on {len(y_train)} examples" if subset is not None else ""
        raise GradingError(
            f"train_lenet: {accuracy:.1%} of the test digits right, the target is {target:.0%}\n"
            f"  the trained model classifies {accuracy:.1%} of the {len(labels)} test digits correctly"
            f"{trained_on}; the target is {target:.0%}. Train longer, or try Adam with lr = 1e-3 and "
            "batches of 32.")
    if outcome.seconds > budget:
        raise GradingError(f"train_lenet: took {outcome.seconds:.1f} s, the budget is {budget:.0f} s\n"
                           f"  {described} took {outcome.seconds:.1f} s; the budget is {budget:.0f} s.")

