"""Reads a directory of TensorBoard event files with the real tensorboard
package's reader (EventAccumulator, what `tensorboard --logdir` itself uses)
and prints every scalar as one line "STEP<TAB>TAG<TAB>VALUE" (VALUE with 9
significant digits: a float32 round-trips), sorted; run by
tests/train/live_metrics_test.cc with the PyTorch 2.x environment's Python
(pipeline/install-torch.sh). Exits 1 when the reader finds no scalars or
reports a data-loss error (a bad CRC or framing)."""

import sys

from tensorboard.backend.event_processing import event_accumulator


def main(directory):
    acc = event_accumulator.EventAccumulator(directory, size_guidance={event_accumulator.SCALARS: 0})
    acc.Reload()
    lines = []
    for tag in acc.Tags()["scalars"]:
        for event in acc.Scalars(tag):
            lines.append("%d\t%s\t%.9g" % (event.step, tag, event.value))
    if not lines:
        print("tensorboard_read: no scalars in %s" % directory, file=sys.stderr)
        return 1
    print("\n".join(sorted(lines)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
