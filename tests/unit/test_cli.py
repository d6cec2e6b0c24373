import pytest

from hub.cli import build
from hub.errors import UsageError
from hub.messages import LineData, SetPins

from .fakes import new_loop, registry


def make(argv, **kw):
    loop = new_loop()
    cfg = build(argv, loop, registry(), **kw)
    return cfg


def names(cfg):
    return [p.name for p in cfg.hub.ports]


def test_ports_numbered_and_sticky_options():
    cfg = make(["--speed=5", "a", "b", "--SPEED=7", "c"])
    assert names(cfg) == ["a(0)", "b(1)", "a(0)".replace("a(0)", "c(2)")]
    assert [p.options["--speed"] for p in cfg.hub.ports] == [5, 5, 7]


def test_routes_can_name_later_ports():
    cfg = make(["--route=0:2", "a", "b", "c"])
    assert cfg.hub.routes.data == {0: (2,), 1: (), 2: ()}


@pytest.mark.parametrize(
    "argv,text",
    [
        (["--bogus=1", "a"], "Unknown option in '--bogus=1'"),
        (["--route=0:5", "a"], "There is no port 5"),
        (["--route=0", "a"], "Invalid route"),
        (["--speed=x", "a"], "Invalid --speed value in '--speed=x'"),
        (["--use-driver=nope", "a"], "No driver nope"),
        (["bad1"], "Invalid address in 'bad1'"),
        (["--create-filter=nope", "a"], "No filter module named 'nope'"),
        (["--add-filters=0:mark", "a"], "There is not any --create-filter option before"),
        (["--create-filter=mark", "--add-filters=0:other", "a"], "Can't find any filter for group other"),
        (["--create-filter=mark:--zz", "a"], "Can't create filter mark"),
        (["--create-filter=mark:plain", "a"], "Can't create filter mark by 'plain'"),
        ([], "No ports given"),
    ],
)
def test_errors_name_the_argument(argv, text):
    with pytest.raises(UsageError) as e:
        make(argv)
    assert text in str(e.value)


def test_error_in_loaded_file_names_file_and_line(tmp_path):
    f = tmp_path / "args.txt"
    f.write_text("a\n--route=0:9\n")
    with pytest.raises(UsageError) as e:
        make([f"--load={f}"])
    msg = str(e.value)
    assert "--route=0:9" in msg and f"file {f}, line 2" in msg


def test_load_gives_same_routes_as_command_line(tmp_path):
    f = tmp_path / "args.txt"
    f.write_text("_B_\n--route=%%1%%:All\n--bi-route=1:2\n%%2%%\nb\nc\n_E_\n--route=2:0\n")
    direct = make(["--route=0:All", "--bi-route=1:2", "a", "b", "c"])
    loaded = make([f"--load={f},_B_,_E_:0,a"])
    assert direct.hub.routes == loaded.hub.routes


def _run(cfg, port, data):
    cfg.hub.set_routes(cfg.hub.routes)
    cfg.hub.received(port, [LineData(data)])


def test_filter_order_in_first_to_last_out_last_to_first():
    cfg = make(
        [
            "--create-filter=mark,g,A",
            "--create-filter=mark,g,B",
            "--add-filters=0,1:g",
            "a",
            "b",
        ]
    )
    cfg.hub.received(0, [LineData(b"x")])
    assert cfg.hub.ports[1].written == [LineData(b"x<A<B>B>A")]


def test_in_and_out_suffixes_and_source_lists():
    cfg = make(
        [
            "--create-filter=mark,g,A",
            "--add-filters=1:g.IN",
            "--add-filters=2:g.out(1)",
            "--route=0,1:2",
            "a",
            "b",
            "c",
        ]
    )
    cfg.hub.received(0, [LineData(b"0")])
    cfg.hub.received(1, [LineData(b"1")])
    assert cfg.hub.ports[2].written == [LineData(b"0"), LineData(b"1<A>A")]


def test_echo_filter_writes_back_through_lower_filters_only():
    cfg = make(
        [
            "--create-filter=mark,g,A",
            "--create-filter=echo,g",
            "--create-filter=mark,g,B",
            "--add-filters=0:g",
            "a",
            "b",
        ]
    )
    cfg.hub.received(0, [LineData(b"x")])
    assert cfg.hub.ports[0].written == [LineData(b"x<A>A")]
    assert cfg.hub.ports[1].written == [LineData(b"x<A<B")]


def test_echo_route_writes_back_to_itself():
    cfg = make(["--echo-route=0", "a"])
    cfg.hub.received(0, [LineData(b"x")])
    assert cfg.hub.ports[0].written == [LineData(b"x")]


def test_negotiation_nearest_provider_and_warnings():
    cfg = make(["--create-filter=mark:--needs-cts", "--add-filters=1:mark.OUT", "a", "b"])
    a, b = cfg.hub.ports
    from hub.caps import In

    assert a.wanted == In.CTS
    assert b.wanted == In.NONE
    assert cfg.warnings == []


def test_flow_control_routes_reach_sources():
    from hub.messages import FlowControl

    cfg = make(["a", "b", "c"])
    cfg.hub.received(1, [FlowControl(True)])
    assert cfg.hub.ports[0].xoff_count == 1
    cfg.hub.received(2, [FlowControl(True)])  # no fc route 2 -> 0 by default
    assert cfg.hub.ports[0].xoff_count == 1


def test_signals_follow_data_routes():
    cfg = make(["a", "b"])
    cfg.hub.received(1, [SetPins(1, 1)])
    assert cfg.hub.ports[0].written == [SetPins(1, 1)]


def test_data_without_filters_takes_the_fast_path_in_order():
    """Data from a port with no filter on its way goes straight to write_data; what a
    destination asks of the hub meanwhile (the connector re-enters it) runs after, in order."""
    cfg = make(["--route=0:1,2", "--route=1:2", "a", "b", "c"])
    hub = cfg.hub
    a, b, c = hub.ports
    assert hub._direct[0] is not None

    def relay(data: bytes, src: int) -> None:  # b hands what it gets on, from inside the write
        b.written.append(LineData(data))
        hub.received(1, [LineData(data.upper())])

    b.write_data = relay  # type: ignore[method-assign]
    hub.received(0, [LineData(b"x")])
    assert b.written == [LineData(b"x")]
    assert c.written == [LineData(b"x"), LineData(b"X")]  # a's to c first, then b's
    assert a.bytes_in == 0 and c.bytes_out == 2 and (b.msgs_out, c.msgs_out) == (1, 2)


def test_filters_on_the_way_keep_the_chain():
    cfg = make(["--create-filter=mark", "--add-filters=1:mark.OUT", "a", "b"])
    assert cfg.hub._direct[0] is None and cfg.hub._direct[1] is not None
    cfg.hub.received(0, [LineData(b"x")])
    assert cfg.hub.ports[1].written == [LineData(b"x>mark")]
