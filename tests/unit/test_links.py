"""functions.links: every link the app sends people points at a route function_app.py serves."""

from __future__ import annotations

from urllib.parse import urlsplit

from devhost.indexing import http_methods, indexed_functions, trigger_of
from devhost.routes import RouteTemplate
from functions.links import Links


def served_routes() -> list[tuple[RouteTemplate, frozenset[str]]]:
    import function_app

    routes = []
    for function in indexed_functions(function_app.app):
        trigger = trigger_of(function)
        if trigger.get_binding_name() == "httpTrigger":
            routes.append((RouteTemplate.parse(trigger.route), frozenset(http_methods(trigger) or ())))
    return routes


def serves(url: str, method: str) -> bool:
    path = urlsplit(url).path
    assert path.startswith("/api/")
    return any(
        route.match(path.removeprefix("/api")) is not None and method in methods for route, methods in served_routes()
    )


def test_every_link_is_a_route_of_the_app():
    links = Links("https://mlops.example.com")
    assert serves(links.release("rel-1"), "GET")
    assert serves(links.approve("rel-1"), "POST")
    assert serves(links.decline("rel-1"), "POST")
    assert serves(links.page("rel-1"), "GET") and serves(links.ui(), "GET")


def test_links_use_the_public_url_and_quote_the_release_id():
    links = Links("https://mlops.example.com/")
    assert links.release("rel-1") == "https://mlops.example.com/api/releases/rel-1"
    assert links.approve("rel/../x") == "https://mlops.example.com/api/releases/rel%2F..%2Fx/approve"
    assert links.page("rel/../x") == "https://mlops.example.com/api/ui/releases/rel%2F..%2Fx"


def test_the_approve_command_names_the_signed_cli_and_the_route_without_any_credential():
    command = Links().approve_command("rel-7")
    assert (
        command == "mlops approve rel-7 (or POST http://127.0.0.1:7071/api/releases/rel-7/approve with your identity)"
    )
    assert "code=" not in command and "x-functions-key" not in command.lower() and '"by"' not in command
