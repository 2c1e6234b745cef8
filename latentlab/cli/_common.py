"""What every command family shares: the ``--device`` option and number types that refuse NaN and Inf."""

from __future__ import annotations

import click

from ..utils import DEVICE_CHOICES


def device_option(f):
    """``--device`` (default auto) on a command."""
    return click.option(
        "--device", default="auto", show_default=True,
        help=f"One of {', '.join(DEVICE_CHOICES)} (or e.g. cuda:1); auto = cuda, then mps, then cpu.",
    )(f)  # fmt: skip


def precision_option(what: str):
    """``--precision`` (default fp32; the names of ``nn.synthesis.PRECISIONS``) on a command; ``what`` is its help."""
    from ..nn.synthesis import PRECISIONS

    return click.option("--precision", type=click.Choice(list(PRECISIONS)), default="fp32", show_default=True,
                        help=what)  # fmt: skip


class Finite(click.ParamType):
    """A finite float option within ``[low, high]`` (bounds optional, each open or closed).

    Unlike ``click.FloatRange`` it refuses ``nan`` (which passes every ``<`` comparison) and ``inf``.
    """

    name = "float"

    def __init__(self, low: float | None = None, high: float | None = None, *, low_open: bool = False,
                 high_open: bool = False) -> None:  # fmt: skip
        self.low, self.high, self.low_open, self.high_open = low, high, low_open, high_open

    def convert(self, value, param, ctx):
        """Parse and check one value; a bad one is a usage error naming the option."""
        from ..validate import InvalidInput, number

        if isinstance(value, float):
            text = value
        else:
            try:
                text = float(str(value).strip())
            except ValueError:
                self.fail(f"{value!r} is not a number", param, ctx)
        try:
            return number(text, "value", low=self.low, high=self.high, low_open=self.low_open,
                          high_open=self.high_open)  # fmt: skip
        except InvalidInput as e:
            self.fail(str(e).replace("value ", "", 1), param, ctx)

    def get_metavar(self, param, ctx=None):
        """Shown in --help: FLOAT."""
        return "FLOAT"


SEED = click.IntRange(0, 2**32 - 1)  # NVIDIA's seeds are uint32 (np.random.RandomState)


def check_output(path, option: str, suffixes: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".webp")) -> None:
    """Refuse an output file with the wrong extension before any work is done (a usage error naming the option)."""
    if path is not None and path.suffix.lower() not in suffixes:
        raise click.UsageError(f"{option} must be a {'/'.join(suffixes)} file, got {str(path)!r}")


def tune_options(f):
    """``--tune-steps``, ``--tune-lpips-threshold`` and ``--locality`` for a command that can follow its projection
    with pivotal tuning (``project --tune``, ``edit-photo --tune``)."""
    f = click.option("--locality/--no-locality", default=False, show_default=True,
                     help="With --tune: PTI's locality regularization.")(f)  # fmt: skip
    f = click.option("--tune-lpips-threshold", type=Finite(0, 10), default=None,
                     help="Stop when the pivot's LPIPS-AlexNet is at or under this; 0 runs every step.  "
                          "[default: PTI's 0.06 for models of 256 px and more, 0 below (measured: "
                          "docs/photos.md)]")(f)  # fmt: skip
    return click.option("--tune-steps", type=click.IntRange(0, 10**6), default=350, show_default=True,
                        help="With --tune: the most tuning steps.")(f)  # fmt: skip


def join_world(device: str, command: str):
    """``(world, device)`` for a command that shards its work over a ``torchrun`` job's processes.

    Resolves ``--device`` (``cuda`` becomes this process's ``cuda:<local rank>``), joins the process group
    and refuses to start when the processes were given different arguments (all of this command's options).
    Without ``torchrun`` it is ``(World(), device)``.
    """
    import torch.distributed

    from ..parallel import init_world
    from ..utils import resolve_device

    dev = resolve_device(device)
    joined = torch.distributed.is_available() and not torch.distributed.is_initialized()
    world = init_world(dev)
    if world.size > 1 and joined:  # this command joined the group: it leaves it when it ends
        click.get_current_context().with_resource(_Membership(world))
    world.agree(f"latentlab {command}", click.get_current_context().params)
    return world, world.device(dev)



def main_echo(world, err: bool = False):
    """``click.echo`` on rank 0 and a no-op elsewhere: every process of a torchrun job would say the same."""
    return (lambda m: click.echo(m, err=err)) if world.is_main else (lambda m: None)


class _Membership:
    """Leaves the process group when the command ends, after a barrier (a process that leaves while another still
    talks aborts), when it ended well or with an error every process raised (``every_process``: a failed shard,
    mismatched arguments). After an error of its own it leaves nothing: the others may be inside another
    collective, and torchrun stops them when this process exits."""

    def __init__(self, world):
        self.world = world

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        import torch.distributed

        if exc_type is None or getattr(exc, "every_process", False):
            self.world.barrier()
            torch.distributed.destroy_process_group()
