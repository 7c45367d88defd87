"""Checks ctmq state-dict exports against the C++ logits (run by
tests/deploy/state_dict_export_test.cc with PYTHONPATH=analysis).

DIR holds, per setting, NAME.pt + NAME.pt.json (ctmq-export --format
state-dict) and NAME.expected (pixels uint8 [N, 1, 28, 28], logits float32
[N, classes] computed by ctmq). For each, torch_model.load + normalise + forward
must give the same predicted class on every image and logits within
TOLERANCE * max(1, max |logit|) of ctmq's: both sides run the same torch ops in
the same order on LibTorch 1.13, so the only differences are float rounding
inside the convolution kernels (the Python build's may vectorise otherwise), a
few float32 ulps of values of order 1; a quantizer level moved by such a
rounding would show as an error of about a level (>= 1/255 of the range), far
above the tolerance. Then damaged exports must be refused with an ExportError
naming the file. Prints "state_dict_check: PASS" and exits 0, else exits 1.
"""

import glob
import json
import os
import shutil
import sys
import tempfile
import zlib

import torch

from ctmq_analysis import torch_model

TOLERANCE = 1e-4


def check_logits(directory):
    models = sorted(glob.glob(os.path.join(directory, "*.pt")))
    assert models, "no exports in %s" % directory
    for path in models:
        name = os.path.basename(path)[:-3]
        # The test's own file (torch::pickle_save, whose typed dict needs
        # torch.jit's restore_type_tag): not an export, so not weights_only.
        expected = torch.load(os.path.join(directory, name + ".expected"), weights_only=False)
        net = torch_model.load(path)
        with torch.no_grad():
            logits = net(torch_model.normalise(expected["pixels"], net.description))
        want = expected["logits"]
        diff = float((logits - want).abs().max())
        scale = max(1.0, float(want.abs().max()))
        same = int(logits.argmax(1).eq(want.argmax(1)).sum())
        print("state_dict_check: %-36s %s max |logit diff| %.3g (scale %.3g), %d/%d same "
              "predictions" % (name, net.description["bits"]["tag"], diff, scale, same,
                               want.size(0)))
        assert diff <= TOLERANCE * scale, "%s: logits differ by %g > %g" % (
            name, diff, TOLERANCE * scale)
        assert same == want.size(0), "%s: %d predictions differ" % (name, want.size(0) - same)
    return models


def expect_refusal(what, pattern, path):
    try:
        torch_model.load(path)
    except torch_model.ExportError as e:
        assert pattern in str(e), "%s: no %r in %r" % (what, pattern, str(e))
        print("state_dict_check: %s refused: %s" % (what, str(e)[:200]))
        return
    raise AssertionError("%s: loaded without error" % what)


def rewrite_description(path, change):
    with open(path + ".json") as f:
        d = json.load(f)
    change(d)
    with open(path, "rb") as f:
        data = f.read()
    d["state_dict_bytes"] = len(data)
    d["state_dict_crc32"] = "%08x" % (zlib.crc32(data) & 0xFFFFFFFF)
    with open(path + ".json", "w") as f:
        json.dump(d, f)


def check_refusals(model):
    tmp = tempfile.mkdtemp()
    try:
        bad = os.path.join(tmp, "bad.pt")

        def fresh():
            shutil.copy(model, bad)
            shutil.copy(model + ".json", bad + ".json")

        fresh()
        os.remove(bad + ".json")
        expect_refusal("a missing description", "bad.pt.json: cannot read the description", bad)

        fresh()
        with open(bad, "r+b") as f:
            f.seek(os.path.getsize(bad) // 2)
            byte = f.read(1)
            f.seek(-1, 1)
            f.write(bytes([byte[0] ^ 0x55]))
        expect_refusal("a changed byte", "from different exports or one was damaged", bad)

        fresh()
        with open(model, "rb") as f:
            data = f.read()
        with open(bad, "wb") as f:
            f.write(data[:len(data) - 200])
        rewrite_description(bad, lambda d: None)
        expect_refusal("a truncated file (description matching it)", "torch.load cannot read it",
                       bad)

        fresh()
        rewrite_description(bad, lambda d: d.update(version=torch_model.VERSION + 1))
        expect_refusal("a newer version", "is newer than this reader", bad)

        fresh()
        rewrite_description(bad, lambda d: d["quantizers"].update(activation="apot"))
        expect_refusal("an unknown quantizer kind", "quantizers.activation 'apot' is not supported",
                       bad)

        fresh()
        state = torch.load(model, weights_only=True)
        state.pop(next(iter(state)))
        torch.save(state, bad)
        rewrite_description(bad, lambda d: None)
        expect_refusal("a missing tensor", "the tensors do not fit the described network", bad)
    finally:
        shutil.rmtree(tmp)


def main():
    torch.set_num_threads(1)
    models = check_logits(sys.argv[1])
    check_refusals(models[0])
    print("state_dict_check: PASS (%d exports)" % len(models))


if __name__ == "__main__":
    try:
        main()
    except AssertionError as e:
        print("state_dict_check: FAIL: %s" % e)
        sys.exit(1)
