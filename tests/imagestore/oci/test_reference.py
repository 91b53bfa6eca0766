"""The reference grammar, with the valid and invalid examples of distribution's own tests."""

from __future__ import annotations

import pytest

from imagestore.oci.errors import InvalidReference
from imagestore.oci.reference import parse, parse_normalized, parse_tagged

HEX = "f" * 64


@pytest.mark.parametrize(
    ("text", "name", "domain", "tag", "digest"),
    [
        ("test_com", "test_com", "", None, None),
        ("test.com:tag", "test.com", "", "tag", None),
        ("test.com:5000", "test.com", "", "5000", None),
        ("test.com/repo:tag", "test.com/repo", "test.com", "tag", None),
        ("test:5000/repo", "test:5000/repo", "test:5000", None, None),
        (f"test:5000/repo@sha256:{HEX}", "test:5000/repo", "test:5000", None, f"sha256:{HEX}"),
        (f"test:5000/repo:tag@sha256:{HEX}", "test:5000/repo", "test:5000", "tag", f"sha256:{HEX}"),
        ("lowercase:Uppercase", "lowercase", "", "Uppercase", None),
        ("a/" * 127 + "a:tag-puts-this-over-max", "a/" * 127 + "a", "a", "tag-puts-this-over-max", None),
        ("sub-dom1.foo.com/bar/baz/quux:some-long-tag", "sub-dom1.foo.com/bar/baz/quux", "sub-dom1.foo.com",
         "some-long-tag", None),
        ("b.gcr.io/test.example.com/my-app:test.example.com", "b.gcr.io/test.example.com/my-app", "b.gcr.io",
         "test.example.com", None),
        ("xn--n3h.com/myimage:xn--n3h.com", "xn--n3h.com/myimage", "xn--n3h.com", "xn--n3h.com", None),
        ("foo_bar.com:8080", "foo_bar.com", "", "8080", None),
        ("foo/foo_bar.com:8080", "foo/foo_bar.com", "foo", "8080", None),
        ("192.168.1.1:5000/repo:5050", "192.168.1.1:5000/repo", "192.168.1.1:5000", "5050", None),
        ("[2001:db8::1]/repo", "[2001:db8::1]/repo", "[2001:db8::1]", None, None),
        ("[2001:db8::1]:5000/repo:tag", "[2001:db8::1]:5000/repo", "[2001:db8::1]:5000", "tag", None),
        ("[::1]:5000/repo", "[::1]:5000/repo", "[::1]:5000", None, None),
    ],
)
def test_parse_accepts_distribution_examples(text: str, name: str, domain: str, tag: str | None,
                                             digest: str | None) -> None:
    ref = parse(text)
    assert (ref.name, ref.domain, ref.tag) == (name, domain, tag)
    assert (str(ref.digest) if ref.digest else None) == digest
    assert str(ref) == text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "at least one component"),
        (":justtag", "invalid reference format"),
        (f"@sha256:{HEX}", "invalid reference format"),
        ("repo@sha256:" + "f" * 34, "invalid checksum digest length"),
        (f"validname@invaliddigest:{HEX}", "unsupported digest algorithm"),
        ("Uppercase:tag", "must be lowercase"),
        ("test:5000/Uppercase/lowercase:tag", "must be lowercase"),
        ("a/" * 128 + "a:tag", "not be more than 255 characters"),
        ("aa/asdf$$^/aa", "invalid reference format"),
        ("[2001:db8::1]", "invalid reference format"),
        ("[2001:db8::1]:5000", "invalid reference format"),
        ("[fe80::1%eth0]:5000/repo", "invalid reference format"),
    ],
)
def test_parse_refuses_distribution_examples_with_a_clear_error(text: str, message: str) -> None:
    with pytest.raises(InvalidReference, match=message.replace("$", r"\$")):
        parse(text)


@pytest.mark.parametrize(
    "text",
    [
        "docker/docker", "library/debian", "debian", "docker.io/docker/docker", "docker.io/library/debian",
        "docker.io/debian", "index.docker.io/docker/docker", "index.docker.io/library/debian",
        "index.docker.io/debian", "127.0.0.1:5000/docker/docker", "127.0.0.1:5000/library/debian",
        "127.0.0.1:5000/debian", "192.168.0.1", "192.168.0.1:80", "192.168.0.1:8/debian",
        "192.168.0.2:25000/debian", "thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev",
        "[fc00::1]:5000/docker", "[fc00::1]:5000/docker/docker", "[fc00:1:2:3:4:5:6:7]:5000/library/debian",
        "docker.io/1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a", "Docker/docker",
        "DOCKER/docker", "docker-rules/docker", "docker---rules/docker", "d/docker", "jess/t", "dock__er/docker",
    ],
)
def test_parse_normalized_accepts_valid_names(text: str) -> None:
    parse_normalized(text)


@pytest.mark.parametrize(
    "text",
    [
        "https://github.com/docker/docker", "docker/Docker", "-docker", "-docker/docker", "-docker.io/docker/docker",
        "docker///docker", "docker.io/docker/Docker", "docker.io/docker///docker", "[fc00::1]", "[fc00::1]:5000",
        "fc00::1:5000/debian", "[fe80::1%eth0]:5000/debian", "[2001:db8:3:4::192.0.2.33]:5000/debian",
        "1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a", "docker-/docker", "-docker-/docker",
        "____/____", "_docker/_docker", "dock..er/docker", "dock_.er/docker", "dock-.er/docker", "docker/", "",
        "this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_255_" * 4 + "/docker",
    ],
)
def test_parse_normalized_refuses_invalid_names(text: str) -> None:
    with pytest.raises(InvalidReference):
        parse_normalized(text)


@pytest.mark.parametrize(
    ("text", "full", "familiar"),
    [
        ("fooo/bar", "docker.io/fooo/bar", "fooo/bar"),
        ("library/ubuntu", "docker.io/library/ubuntu", "ubuntu"),
        ("ubuntu", "docker.io/library/ubuntu", "ubuntu"),
        ("index.docker.io/library/ubuntu", "docker.io/library/ubuntu", "ubuntu"),
        ("docker.io/foo", "docker.io/library/foo", "foo"),
        ("library/foo/bar", "docker.io/library/foo/bar", "library/foo/bar"),
        ("127.0.0.1:8000/private/moonbase", "127.0.0.1:8000/private/moonbase", "127.0.0.1:8000/private/moonbase"),
        ("example.com:8000/privatebasee", "example.com:8000/privatebasee", "example.com:8000/privatebasee"),
        ("Foo/bar", "Foo/bar", "Foo/bar"),
        ("localhost/app", "localhost/app", "localhost/app"),
    ],
)
def test_normalized_names_get_docker_io_and_library(text: str, full: str, familiar: str) -> None:
    ref = parse_normalized(text)
    assert ref.name == full
    assert ref.familiar_name == familiar


def test_default_tag_is_latest_but_not_for_digests() -> None:
    assert str(parse_tagged("centos")) == "docker.io/library/centos:latest"
    assert parse_tagged("centos:6.6").tag == "6.6"
    digested = parse_tagged(f"centos@sha256:{HEX}")
    assert digested.tag is None and str(digested.digest) == f"sha256:{HEX}"


def test_tag_and_digest_keep_familiar_form() -> None:
    text = "busybox:latest@sha256:86e0e091d0da6bde2456dbb48306f3956bbeb2eae1b5b9a43045843f69fe4aaa"
    ref = parse_normalized(text)
    assert str(ref) == "docker.io/library/" + text
    assert ref.familiar == text


def test_64_hex_names_are_refused_as_ambiguous_with_ids() -> None:
    with pytest.raises(InvalidReference, match="cannot specify 64-byte hexadecimal strings"):
        parse_normalized("a" * 64)


def test_error_names_what_the_person_typed() -> None:
    with pytest.raises(InvalidReference, match="docker///docker"):
        parse_normalized("docker///docker")
