from hub.routes import RouteBuilder


def test_default_routes_port0_to_all_and_1_back():
    r = RouteBuilder().finish(3)
    assert r.data == {0: (1, 2), 1: (0,), 2: ()}
    # flow control only where data flows both ways
    assert r.fc == {0: (1,), 1: (0,), 2: ()}


def test_single_port_has_no_routes():
    assert RouteBuilder().finish(1).data == {0: ()}


def test_route_all_all_excludes_self():
    b = RouteBuilder()
    b.route([0, 1, 2], [0, 1, 2])
    r = b.finish(3)
    assert r.data == {0: (1, 2), 1: (0, 2), 2: (0, 1)}


def test_echo_route_adds_self_and_self_fc():
    b = RouteBuilder()
    b.echo_route([0])
    r = b.finish(2)
    assert r.data[0] == (0,)
    assert r.fc[0] == (0,)


def test_no_route_then_route_in_order():
    b = RouteBuilder()
    b.route([0], [1, 2])
    b.no_route([0], [1])
    assert b.finish(3).data[0] == (2,)
    b.route([0], [1])
    assert b.finish(3).data[0] == (1, 2)


def test_fc_route_alone_leaves_no_data_routes():
    b = RouteBuilder()
    b.fc_route([2], [0])
    r = b.finish(3)
    assert all(not d for d in r.data.values())
    assert r.fc[2] == (0,)


def test_no_default_fc_route():
    b = RouteBuilder()
    b.bi_route([0], [1])
    b.no_default_fc_route([1], [0])
    r = b.finish(2)
    assert r.fc == {0: (1,), 1: ()}


def test_all_all_on_many_ports_and_sources_by_destination():
    n = 300
    b = RouteBuilder()
    b.route(list(range(n)), list(range(n)))
    r = b.finish(n)
    assert all(r.data[s] == tuple(d for d in range(n) if d != s) for s in range(n))
    assert r.fc == r.data  # data flows both ways everywhere
    assert r.sources() == {d: [s for s in range(n) if s != d] for d in range(n)}


def test_sources_lists_each_destinations_sources_in_port_order():
    b = RouteBuilder()
    b.route([2], [0])
    b.route([1], [0, 2])
    b.echo_route([1])
    assert b.finish(3).sources() == {0: [1, 2], 1: [1], 2: [1]}
