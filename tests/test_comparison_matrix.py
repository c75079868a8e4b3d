"""A batch graded by several models shows them side by side: one row per document, one column per model."""

import re

import pytest

from tests.conftest import make_batch
from tests.review_support import comparison_batch
from tests.web_support import share_for_viewing

pytestmark = pytest.mark.django_db


@pytest.fixture
def compared(owner):
    return comparison_batch(owner)


def row_names(html: str) -> list[str]:
    return re.findall(r'<th scope="row"><bdi>([^<]+)</bdi></th>', html)


def test_the_matrix_has_a_row_per_document_and_a_column_per_model(client, owner, compared):
    batch, jobs = compared
    client.force_login(owner)
    response = client.get(f"/batches/{batch.pk}/compare")
    assert response.status_code == 200
    html = response.content.decode()
    assert row_names(html) == ["alpha.txt", "bravo.txt", "charlie.txt", "delta.txt"]
    assert '<th scope="col" class="num">builtin:builtin-v1</th>' in html
    assert '<th scope="col" class="num">openai:gpt-4o-mini</th>' in html
    bravo = jobs[("bravo.txt", "openai")]
    assert f'<a href="/batches/{batch.pk}/jobs/{bravo.pk}">85 / 100</a>' in html
    failed = jobs[("delta.txt", "builtin")]
    assert f'<a href="/batches/{batch.pk}/jobs/{failed.pk}">Failed</a>' in html


def test_a_wide_spread_is_marked_with_a_symbol_and_words_not_colour_alone(client, owner, compared):
    batch, _ = compared
    client.force_login(owner)
    html = client.get(f"/batches/{batch.pk}/compare").content.decode()
    bravo = html[html.index('<th scope="row"><bdi>bravo.txt</bdi></th>') :].split("</tr>")[0]
    assert '<span class="spread-marker" aria-hidden="true">▲</span> <strong>40 points</strong>' in bravo
    assert '<span class="flag flag-warning">differ</span>' in bravo
    charlie = html[html.index('<th scope="row"><bdi>charlie.txt</bdi></th>') :].split("</tr>")[0]
    assert "4 points" in charlie and "differ" not in charlie
    alpha = html[html.index('<th scope="row"><bdi>alpha.txt</bdi></th>') :].split("</tr>")[0]
    assert "1 point</td>" in alpha


def test_the_matrix_sorts_by_spread_either_way_with_single_grades_last(client, owner, compared):
    batch, _ = compared
    client.force_login(owner)
    largest = client.get(f"/batches/{batch.pk}/compare?ordering=-spread").content.decode()
    assert row_names(largest) == ["bravo.txt", "charlie.txt", "alpha.txt", "delta.txt"]
    assert 'aria-sort="descending"' in largest
    smallest = client.get(f"/batches/{batch.pk}/compare?ordering=spread").content.decode()
    assert row_names(smallest) == ["alpha.txt", "charlie.txt", "bravo.txt", "delta.txt"]


def test_an_unknown_sort_of_the_matrix_is_refused_with_a_sentence(client, owner, compared):
    batch, _ = compared
    client.force_login(owner)
    response = client.get(f"/batches/{batch.pk}/compare?ordering=name")
    assert response.status_code == 400
    assert "“name” is not a way to sort the matrix; choose from -spread, spread." in response.content.decode()


def test_the_batch_page_links_to_the_matrix_and_shows_the_spread_only_with_several_models(
    client, owner, compared
):
    batch, _ = compared
    client.force_login(owner)
    html = client.get(f"/batches/{batch.pk}").content.decode()
    assert f'href="/batches/{batch.pk}/compare"' in html
    assert '<option value="-spread">Models differ most first</option>' in html
    assert "· models differ by 4 %" in html  # charlie's spread, under the threshold
    single = make_batch(owner, jobs=1, name="One model")
    html = client.get(f"/batches/{single.pk}").content.decode()
    assert "/compare" not in html
    assert "Models differ most first" not in html and "· models differ by" not in html
    page = client.get(f"/batches/{single.pk}/compare").content.decode()
    assert "This batch has one model: there is nothing to compare." in page


def test_a_viewer_can_read_the_matrix_and_a_stranger_cannot_find_it(
    client, owner, colleague, stranger, compared
):
    batch, _ = compared
    share_for_viewing(batch, colleague)
    client.force_login(colleague)
    assert client.get(f"/batches/{batch.pk}/compare").status_code == 200
    client.force_login(stranger)
    assert client.get(f"/batches/{batch.pk}/compare").status_code == 404


@pytest.mark.parametrize("documents", [0, 2])
def test_a_batch_set_to_compare_models_that_has_not_graded_yet_says_so_rather_than_one_model(
    client, owner, documents
):
    draft = make_batch(
        owner, jobs=documents, name="Two models", settings={"models": ["builtin-v1", "builtin-v2"]}
    )
    client.force_login(owner)

    page = client.get(f"/batches/{draft.pk}/compare").content.decode()

    assert "one model" not in page
    assert "Nothing to compare yet: each document is graded by 2 models (builtin-v1, builtin-v2)" in page
