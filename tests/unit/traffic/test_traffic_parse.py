"""Parsers of HAProxy runtime API output, from canned text."""

from __future__ import annotations

import pytest

from cdlib.traffic.base import Target
from cdlib.traffic.haproxy_parse import (
    RuntimeParseError,
    parse_servers_state,
    parse_stat_csv,
    server_name,
    server_stats,
    split_server_name,
)

HEADER = (
    "# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,"
    "wretr,wredis,status,weight,act,bck,chkfail,chkdown,lastchg,downtime,qlimit,pid,iid,"
    "sid,throttle,lbtot,tracked,type,rate,rate_lim,rate_max,check_status,check_code,"
    "check_duration,hrsp_1xx,hrsp_2xx,hrsp_3xx,hrsp_4xx,hrsp_5xx,hrsp_other,hanafail,"
    "req_rate,req_rate_max,req_tot,cli_abrt,srv_abrt,comp_in,comp_out,comp_byp,comp_rsp,"
    "lastsess,last_chk,last_agt,qtime,ctime,rtime,ttime,agent_status,agent_code,"
    "agent_duration,check_desc,agent_desc,check_rise,check_fall,check_health,uweight,"
)


def _row(**kw: str) -> str:
    cols = HEADER[2:].rstrip(",").split(",")
    values = {"pxname": "app", "svname": "x", "status": "UP", "weight": "100"} | kw
    return ",".join(values.get(c, "") for c in cols) + ","


STAT = "\n".join(
    [
        HEADER,
        _row(svname="FRONTEND", pxname="www", status="OPEN"),
        _row(
            svname="blue_10.0.0.1:8080",
            scur="2",
            stot="40",
            hrsp_2xx="35",
            hrsp_5xx="5",
            rtime="12",
            check_status="L7OK",
            check_code="200",
            check_desc="Layer7 check passed",
            uweight="100",
        ),
        _row(
            svname="green_10.0.0.2:8080",
            status="DOWN",
            weight="0",
            check_status="* L7STS",
            check_code="503",
            check_desc="Layer7 wrong status",
            last_chk="Service Unavailable",
        ),
        _row(svname="BACKEND", status="UP"),
        "",
    ]
)


def test_stat_rows_of_one_backend() -> None:
    rows = server_stats(STAT, "app")
    assert [r.name for r in rows] == ["blue_10.0.0.1:8080", "green_10.0.0.2:8080"]
    blue, green = rows
    assert blue.up and blue.check_passed and not blue.check_running
    assert (blue.scur, blue.responses, blue.hrsp_5xx, blue.rtime_ms) == (2, 40, 5, 12)
    assert blue.uweight == 100
    assert not green.up and not green.check_passed and green.check_running
    assert green.check_status == "L7STS"
    assert green.check_reason == "L7STS 503: Layer7 wrong status: Service Unavailable"
    assert green.rtime_ms is None


def test_stat_without_header_is_an_error() -> None:
    with pytest.raises(RuntimeParseError, match="header"):
        parse_stat_csv("app,x,0\n")


def test_stat_short_row_names_the_line() -> None:
    with pytest.raises(RuntimeParseError, match="line 2"):
        parse_stat_csv("# pxname,svname,status\napp,x\n")


SERVERS_STATE = """1
# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight \
srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state \
srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl \
srv_check_port srv_check_addr srv_agent_addr srv_agent_port
3 app 1 blue_127.0.0.1:9001 127.0.0.1 2 0 100 100 12 6 3 4 6 0 0 0 - 9001 - 0 0 - - 0
3 app 2 green_127.0.0.1:9002 127.0.0.1 2 8 50 50 3 6 3 4 6 0 0 0 - 9002 - 0 0 - - 0
3 app 3 green_127.0.0.1:9003 127.0.0.1 0 1 0 0 3 6 3 4 6 0 0 0 - 9003 - 0 0 - - 0

"""


def test_servers_state() -> None:
    rows = parse_servers_state(SERVERS_STATE)
    assert [(r.name, r.port, r.uweight) for r in rows] == [
        ("blue_127.0.0.1:9001", 9001, 100),
        ("green_127.0.0.1:9002", 9002, 50),
        ("green_127.0.0.1:9003", 9003, 0),
    ]
    assert not rows[0].in_maint and not rows[0].draining
    assert rows[1].draining and not rows[1].in_maint
    assert rows[2].in_maint and rows[2].op_state == 0


def test_servers_state_rejects_unknown_version_and_bad_lines() -> None:
    with pytest.raises(RuntimeParseError, match="format version"):
        parse_servers_state("2\n# be_id\n")
    bad = SERVERS_STATE.replace("2 0 100 100", "x 0 100 100")
    with pytest.raises(RuntimeParseError, match="line 3"):
        parse_servers_state(bad)


def test_server_names_round_trip() -> None:
    target = Target("10.0.0.1", 8080)
    assert server_name("blue", target) == "blue_10.0.0.1:8080"
    assert split_server_name("blue_10.0.0.1:8080") == ("blue", target)
    assert split_server_name("web1") is None
    assert split_server_name("Blue_10.0.0.1:80") is None
    assert split_server_name("blue_nohost") is None
