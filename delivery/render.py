"""Rendering built-in and overridden email templates to subject, HTML and text.

A template ``name`` is three files: ``name.subject.j2``, ``name.html.j2`` and
``name.txt.j2``. Files in the override folder win over the built-in ones with the
same file name, including the ``_layout.html.j2`` layout, and may add new names.

A localized part ``name.<locale>.<part>.j2`` (``fr-CA``, then ``fr``) wins over the
plain one for a recipient with that locale; each part falls back on its own.

Built-in names have declared variables (delivery/template_catalog.py): a missing
required one is named in the error before anything renders. Links come from APP_URL:
the renderer adds ``appUrl`` and ``preferencesUrl`` (and ``unsubscribeUrl`` when the
email may be unsubscribed from) to the data.
"""

from __future__ import annotations

import html
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import jinja2.meta

from delivery.template_catalog import BUILTIN, PROVIDED

BUILTIN_DIR = Path(__file__).parent / "templates"
# The seed cached compiled templates for an hour; mtime checks catch edits sooner.
DEFAULT_TTL_SECONDS = 3600.0
PARTS = ("subject", "html", "txt")
_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
# An href attribute in rendered HTML (also xlink:href), with its value in double quotes,
# single quotes or bare.
_HREF = re.compile(
    r"""(?<![\w-])href\s*=\s*(?:"(?P<dq>[^"]*)"|'(?P<sq>[^']*)'|(?P<bare>[^\s"'=<>`]+))""",
    re.IGNORECASE,
)
# Browsers drop tabs and newlines anywhere in a URL and trim C0 controls and spaces at its
# ends, so "java\tscript:" is javascript: to them; the check sees the URL as they do.
_URL_IGNORED = re.compile(r"[\t\n\r]")
_C0_AND_SPACE = "".join(chr(code) for code in range(0x21))
_HTTP_URL = re.compile(r"https?://", re.IGNORECASE)
# What a stored locale may name in a file name: a BCP 47-ish tag, nothing path-like.
_LOCALE = re.compile(r"[A-Za-z]{2,8}(?:[-_][A-Za-z0-9]{1,8}){0,3}")
PREFERENCES_PATH = "/settings/notifications"


class TemplateError(Exception):
    """Base for everything the API layer should answer with 422."""


class UnknownTemplate(TemplateError):
    pass


class MissingVariable(TemplateError):
    pass


class BrokenTemplate(TemplateError):
    """A syntax error in a template file, usually an override."""


@dataclass(frozen=True, slots=True)
class TemplateInfo:
    name: str
    required: list[str]
    optional: list[str]
    builtin: bool
    overridden: bool
    locales: list[str]


@dataclass(frozen=True, slots=True)
class Rendered:
    subject: str
    html: str
    text: str


class _Loader(jinja2.BaseLoader):
    """Looks in the override folder, then the built-ins; an entry goes stale after the
    TTL, when its file changes, or when an override appears for a built-in."""

    def __init__(self, dirs: list[Path], ttl: float, clock: Callable[[], float]) -> None:
        self.dirs = dirs
        self._ttl = ttl
        self._clock = clock

    def find(self, filename: str) -> Path | None:
        for folder in self.dirs:
            path = folder / filename
            if path.is_file():
                return path
        return None

    def get_source(
        self, environment: jinja2.Environment, template: str
    ) -> tuple[str, str, Callable[[], bool]]:
        path = self.find(template)
        if path is None:
            raise jinja2.TemplateNotFound(template)
        mtime = path.stat().st_mtime_ns
        loaded_at = self._clock()
        source = path.read_text(encoding="utf-8")

        def uptodate() -> bool:
            if self._clock() - loaded_at >= self._ttl or self.find(template) != path:
                return False
            try:
                return path.stat().st_mtime_ns == mtime
            except OSError:
                return False

        return source, str(path), uptodate


class TemplateRenderer:
    def __init__(
        self,
        override_dir: Path | None = None,
        ttl_seconds: float = DEFAULT_TTL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        app_url: str = "https://pitchey.com",
    ) -> None:
        self.app_url = app_url.rstrip("/")
        self.override_dir = override_dir
        dirs = [override_dir, BUILTIN_DIR] if override_dir is not None else [BUILTIN_DIR]
        self._loader = _Loader(dirs, ttl_seconds, clock)
        self._env = jinja2.Environment(
            loader=self._loader,
            # User data in HTML is escaped, so a pitch title cannot inject markup.
            autoescape=lambda filename: bool(filename and filename.endswith(".html.j2")),
            undefined=jinja2.StrictUndefined,
            auto_reload=True,
            trim_blocks=True,
            lstrip_blocks=True,
        )

    def names(self) -> list[str]:
        found: set[str] = set()
        for folder in self._loader.dirs:
            if folder.is_dir():
                found.update(
                    p.name.removesuffix(".subject.j2") for p in folder.glob("*.subject.j2")
                )
        return sorted(name for name in found if self.exists(name))

    def exists(self, name: str) -> bool:
        return bool(_NAME.fullmatch(name)) and all(
            self._loader.find(f"{name}.{part}.j2") is not None for part in PARTS
        )

    def describe(self) -> list[TemplateInfo]:
        """Every template with its variables: declared for built-in names, otherwise every
        variable the override's files use (listed as required: they are not declared)."""
        found = []
        for name in self.names():
            builtin = name in BUILTIN
            overridden = self.override_dir is not None and any(
                (self.override_dir / f"{name}.{part}.j2").is_file() for part in PARTS
            )
            if builtin:
                required = list(BUILTIN[name].required)
                optional = list(BUILTIN[name].optional)
            else:
                required, optional = self._used_variables(name), []
            found.append(
                TemplateInfo(name, required, optional, builtin, overridden, self._locales(name))
            )
        return found

    def _used_variables(self, name: str) -> list[str]:
        used: set[str] = set()
        for part in PARTS:
            path = self._loader.find(f"{name}.{part}.j2")
            if path is None:
                continue
            try:
                tree = self._env.parse(path.read_text(encoding="utf-8"))
            except (jinja2.TemplateSyntaxError, OSError):
                continue
            used |= jinja2.meta.find_undeclared_variables(tree)
        return sorted(used - set(PROVIDED))

    def _locales(self, name: str) -> list[str]:
        found: set[str] = set()
        for folder in self._loader.dirs:
            if folder.is_dir():
                for path in folder.glob(f"{name}.*.subject.j2"):
                    locale = path.name.removeprefix(f"{name}.").removesuffix(".subject.j2")
                    if _LOCALE.fullmatch(locale):
                        found.add(locale)
        return sorted(found)

    def render(
        self,
        name: str,
        data: Mapping[str, Any],
        *,
        locale: str | None = None,
        unsubscribe_url: str | None = None,
    ) -> Rendered:
        if not self.exists(name):
            raise UnknownTemplate(f"unknown email template {name!r}")
        declared = BUILTIN.get(name)
        if declared is not None:
            missing = [key for key in declared.required if key not in data]
            if missing:
                raise MissingVariable(f"template {name!r} needs variable(s) {', '.join(missing)}")
        context = dict(data)
        # Links come from APP_URL, whatever the caller sent under these names.
        for key in PROVIDED:
            context.pop(key, None)
        context["appUrl"] = self.app_url
        context["preferencesUrl"] = self.app_url + PREFERENCES_PATH
        if unsubscribe_url is not None:
            context["unsubscribeUrl"] = unsubscribe_url
        candidates = _locale_candidates(locale)
        subject, body, text = (self._render_part(name, part, context, candidates) for part in PARTS)
        # Whitespace runs, CR and LF included, become one space: a subject built from user
        # data must never be able to start a new header line.
        subject = " ".join(subject.split())
        if not subject:
            raise MissingVariable(f"template {name!r} rendered an empty subject")
        return Rendered(subject, only_http_links(body), text)

    def _render_part(
        self, name: str, part: str, data: Mapping[str, Any], locales: list[str]
    ) -> str:
        filename = f"{name}.{part}.j2"
        for locale in locales:
            localized = f"{name}.{locale}.{part}.j2"
            if self._loader.find(localized) is not None:
                filename = localized
                break
        try:
            return self._env.get_template(filename).render(data)
        except jinja2.UndefinedError as exc:
            raise MissingVariable(f"template {name!r} ({part}): {exc.message}") from exc
        except jinja2.TemplateSyntaxError as exc:
            raise BrokenTemplate(
                f"template {exc.filename or filename}:{exc.lineno}: {exc}"
            ) from exc
        except jinja2.TemplateNotFound as exc:
            raise UnknownTemplate(f"template {name!r} is missing {exc.name}") from exc


def _locale_candidates(locale: str | None) -> list[str]:
    """The file-name locales to try, most specific first: fr-CA, then fr."""
    if not locale or not _LOCALE.fullmatch(locale):
        return []
    tag = locale.replace("_", "-")
    candidates = [tag]
    if "-" in tag:
        candidates.append(tag.split("-", 1)[0])
    return candidates


def only_http_links(markup: str) -> str:
    """Drop every href whose URL is not http(s): a `javascript:` or `data:` link built from
    template data (or written into an override) must not reach a mail client, where one
    click runs or shows it. The link's text stays, as text."""

    def check(match: re.Match[str]) -> str:
        raw = match["dq"] if match["dq"] is not None else match["sq"]
        if raw is None:
            raw = match["bare"]
        url = _URL_IGNORED.sub("", html.unescape(raw)).strip(_C0_AND_SPACE)
        return match[0] if _HTTP_URL.match(url) else ""

    return _HREF.sub(check, markup)
