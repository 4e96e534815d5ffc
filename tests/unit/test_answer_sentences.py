"""Sentences as an answer quotes them: whole across line breaks, items and rows kept whole."""

from __future__ import annotations

from snaprag.generate.sentences import chunk_sentences, continues


def _texts(text: str) -> list[str]:
    return [s.text for s in chunk_sentences(text)]


def test_a_korean_sentence_wrapped_after_a_particle_stays_whole() -> None:
    text = (
        "스냅데스크 S2의 보증 기간은 부품에 따라 다릅니다. 프레임과 모터는 7년, 컨트롤 박스와\n"
        "핸드셋, 전원 어댑터 같은 전자 부품은 3년, 상판은 2년 동안 무상으로 보증합니다.\n"
        "보증 기간은 구매일이 아니라 제품을 받은 날(배송 완료일)부터 계산합니다."
    )
    assert _texts(text) == [
        "스냅데스크 S2의 보증 기간은 부품에 따라 다릅니다.",
        "프레임과 모터는 7년, 컨트롤 박스와 핸드셋, 전원 어댑터 같은 전자 부품은 3년, "
        "상판은 2년 동안 무상으로 보증합니다.",
        "보증 기간은 구매일이 아니라 제품을 받은 날(배송 완료일)부터 계산합니다.",
    ]


def test_a_short_korean_line_that_starts_the_chunk_is_joined_too() -> None:
    text = "프레임과 모터는 7년, 컨트롤 박스와\n핸드셋은 3년 동안 보증합니다."
    assert _texts(text) == ["프레임과 모터는 7년, 컨트롤 박스와 핸드셋은 3년 동안 보증합니다."]


def test_korean_headings_stand_alone() -> None:
    text = (
        "1. 보증 기간\n스냅데스크 S2의 보증 기간은 부품에 따라 다릅니다.\n\n"
        "4. 문의\n고객센터로 연락해 주세요."
    )
    pieces = chunk_sentences(text)
    assert [(s.text, s.kind) for s in pieces] == [
        ("1. 보증 기간", "heading"),
        ("스냅데스크 S2의 보증 기간은 부품에 따라 다릅니다.", "sentence"),
        ("4. 문의", "heading"),
        ("고객센터로 연락해 주세요.", "sentence"),
    ]


def test_an_english_sentence_wrapped_at_a_short_line_stays_whole() -> None:
    text = (
        "Warranty coverage\n"
        "During the warranty period we repair or replace the defective part free of charge, "
        "including\nshipping of the part to you.\n"
        "Out-of-warranty repairs cost a flat\nservice fee of USD 89 plus parts."
    )
    assert _texts(text) == [
        "Warranty coverage",
        "During the warranty period we repair or replace the defective part free of charge, "
        "including shipping of the part to you.",
        "Out-of-warranty repairs cost a flat service fee of USD 89 plus parts.",
    ]


def test_a_colon_that_goes_on_in_lower_case_is_one_sentence() -> None:
    text = "run a reset:\nhold the DOWN button for 10 seconds until you hear a beep."
    assert _texts(text) == [
        "run a reset: hold the DOWN button for 10 seconds until you hear a beep."
    ]


def test_list_items_stay_whole_with_all_their_sentences() -> None:
    text = (
        "1. Find the serial number on the label. It has 9 characters\n"
        "and starts with SD2.\n"
        "2. Take a short video.\n"
        "We answer every claim within 2 business days."
    )
    pieces = chunk_sentences(text)
    assert [(s.text, s.kind) for s in pieces] == [
        (
            "1. Find the serial number on the label. It has 9 characters and starts with SD2.",
            "item",
        ),
        ("2. Take a short video.", "item"),
        ("We answer every claim within 2 business days.", "sentence"),
    ]


def test_table_rows_are_pieces_of_their_own_with_the_first_as_heading() -> None:
    text = (
        "Code | Meaning | What to do\n"
        "E01 | Overload: more than 120 kg on the desk | Remove weight, then press any button\n"
        "E05 | Anti-collision stop | Clear the obstacle; the desk moved back 2 cm\n"
        "| a | b |\n|---|---|\n| 1 | 2 |"
    )
    pieces = [(s.text, s.kind) for s in chunk_sentences(text)]
    assert pieces[0] == ("Code | Meaning | What to do", "heading")
    assert pieces[2] == (
        "E05 | Anti-collision stop | Clear the obstacle; the desk moved back 2 cm",
        "row",
    )
    assert ("--- | ---", "row") not in pieces and pieces[-1] == ("1 | 2", "row")


def test_a_chunk_that_starts_mid_sentence_marks_the_tail_as_a_fragment() -> None:
    pieces = chunk_sentences("a visit can be booked while valid. The frame has 7 years.")
    assert [s.kind for s in pieces] == ["fragment", "sentence"]


def test_line_joining_rules() -> None:
    assert continues("Frame and lifting motors, electronics and", "the desktop are covered.")
    assert not continues("The desk is covered.", "It has a label.")
    assert not continues("The warranty does not cover", "- liquid damage")
    assert not continues("Warranty coverage", "Snapdesk Inc. warrants the desk.")
    assert not continues("보증 기간은 7년입니다", "상판은 2년입니다.")


def test_a_numbered_heading_over_bullets_is_a_heading_not_an_item() -> None:
    text = (
        "보증 기간은 받은 날부터 계산합니다.\n\n2. 보증 대상이 아닌 경우\n- 하중을 넘긴 고장\n"
        "- 임의로 개조한 경우\n\n3. 반품과 환불\n30일 안에 반품하면 환불합니다."
    )
    kinds = [(s.kind, s.text) for s in chunk_sentences(text)]
    assert kinds == [
        ("sentence", "보증 기간은 받은 날부터 계산합니다."),
        ("heading", "2. 보증 대상이 아닌 경우"),
        ("item", "- 하중을 넘긴 고장"),
        ("item", "- 임의로 개조한 경우"),
        ("heading", "3. 반품과 환불"),
        ("sentence", "30일 안에 반품하면 환불합니다."),
    ]
    steps = "Do this:\n1. Unplug the desk.\n2. Hold the button"
    assert [s.kind for s in chunk_sentences(steps)][1:] == ["item", "item"]  # numbered list
