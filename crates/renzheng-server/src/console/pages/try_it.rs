//! Try it: a check exactly as a caller gets it (the same parsing, the same verification,
//! the same JSON), with what the engine saw drawn on the photo: the faces it found, the
//! chosen face's box and five landmarks, the quality reasons, the score against the
//! bands. Or two photos compared. A console check is audited (app `console`, never
//! charged), so it appears in the history and the overview like any other.

use std::borrow::Cow;

use axum::extract::{Multipart, State};
use axum::http::StatusCode;
use axum::response::Response;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use maud::{html, Markup};
use renzheng_app::{CheckFields, Checked, Origin, Scored};
use renzheng_vision::{Analysis, Verdict};

use crate::check::{self, CheckData};
use crate::console::csrf;
use crate::console::errors::refusal_text;
use crate::console::fields;
use crate::console::i18n::Lang;
use crate::console::layout::{html_page, Flash, Page};
use crate::console::session::Operator;
use crate::console::verified::Verified;
use crate::console::words;
use crate::error::{ApiError, Envelope, NoData};
use crate::request_id::RequestId;
use crate::state::AppState;

/// The page; `typed`: what the check form had (its name and ID number are put back, so
/// another photo can be tried, or a refused value mended).
fn render(
    op: &Operator,
    lang: Lang,
    flash: Vec<Flash>,
    result: Option<Markup>,
    typed: Option<&fields::Typed>,
) -> Response {
    let t = lang.t();
    let fill = fields::Typed::fill(typed, "try");
    let csrf = || csrf::field(&op.session);
    html_page(
        StatusCode::OK,
        Page {
            lang,
            operator: Some(&op.session),
            active: "try",
            title: t.try_it,
            flash,
        },
        html! {
            p .muted { (t.try_intro) }
            @if let Some(result) = result { (result) }
            div .grid {
                section .card {
                    h2 { (t.try_it) }
                    form #try method="post" action="/console/try" enctype="multipart/form-data" {
                        (csrf())
                        (fields::person_name(lang, fill))
                        (fields::id_number(lang, fill))
                        label { (t.photo) input name="photo" type="file" accept="image/*" required; }
                        button type="submit" { (t.run_check) }
                    }
                }
                section .card {
                    h2 { (t.compare_two) }
                    form #compare method="post" action="/console/try/compare" enctype="multipart/form-data" {
                        (csrf())
                        label { (t.photo_a) input name="photo_a" type="file" accept="image/*" required; }
                        label { (t.photo_b) input name="photo_b" type="file" accept="image/*" required; }
                        button type="submit" { (t.compare) }
                    }
                }
            }
        },
    )
}

/// `GET /console/try`.
pub async fn page(op: Operator, lang: Lang) -> Response {
    render(&op, lang, Vec::new(), None, None)
}

/// The image type of `bytes` for a `data:` URL (only the formats the decoder accepts).
fn mime_of(bytes: &[u8]) -> &'static str {
    match bytes {
        [0xFF, 0xD8, ..] => "image/jpeg",
        [0x89, b'P', b'N', b'G', ..] => "image/png",
        [b'G', b'I', b'F', ..] => "image/gif",
        [b'B', b'M', ..] => "image/bmp",
        [b'R', b'I', b'F', b'F', _, _, _, _, b'W', b'E', b'B', b'P', ..] => "image/webp",
        _ => "application/octet-stream",
    }
}

/// The photo with what the engine found drawn over it: every face's box (the chosen
/// one solid, `#face-box`), the chosen face's five landmarks.
fn overlay(lang: Lang, id: &str, photo: &[u8], analysis: &Analysis) -> Markup {
    let (w, h) = (analysis.width.max(1), analysis.height.max(1));
    let data = format!("data:{};base64,{}", mime_of(photo), B64.encode(photo));
    let chosen = analysis.face.as_ref();
    html! {
        svg id=(id) .overlay viewBox={ "0 0 " (w) " " (h) } width=(w) height=(h) data-faces=(analysis.faces.len()) {
            image href=(data) x="0" y="0" width=(w) height=(h) {}
            @for f in &analysis.faces {
                @if chosen.is_none_or(|c| c.rect != f.rect) {
                    rect .other x=(f.rect.left) y=(f.rect.top) width=(f.rect.right - f.rect.left + 1) height=(f.rect.bottom - f.rect.top + 1) {}
                }
            }
            @if let Some(face) = chosen {
                @let r = face.rect;
                rect #face-box x=(r.left) y=(r.top) width=(r.right - r.left + 1) height=(r.bottom - r.top + 1) {}
                @let radius = ((r.right - r.left) as f64 / 40.0).max(2.0);
                @for p in &face.landmarks {
                    circle .landmark cx=(format!("{:.1}", p.x)) cy=(format!("{:.1}", p.y)) r=(format!("{radius:.1}")) {}
                }
                // The quality gate's reasons, written on the photo under the box.
                @let reasons: Vec<String> = face.quality.issues.iter().chain(&face.quality.warnings).map(|i| words::quality(lang, i.as_str())).collect();
                @let size = radius * 6.0;
                // Under the box when there is room, else above it.
                @let below = r.bottom as f64 + size + 2.0;
                @let y = if below < f64::from(h) { below } else { (r.top as f64 - size / 2.0).max(size) };
                @if !reasons.is_empty() {
                    text .reasons x=(r.left.max(0)) y=(format!("{y:.0}")) font-size=(format!("{size:.0}")) {
                        (reasons.join(" · "))
                    }
                }
            }
        }
    }
}

/// The score on the bands: where it fell.
fn score_line(lang: Lang, scored: &Scored) -> Markup {
    let t = lang.t();
    html! {
        p #try-score {
            (t.score) " " strong { (format!("{:.4}", scored.score)) }
            " · " (t.bands) ": " (t.same_at) " " (format!("{:.4}", scored.same))
            ", " (t.different_at) " " (format!("{:.4}", scored.different))
        }
    }
}

fn quality_list(lang: Lang, analysis: &Analysis) -> Markup {
    let t = lang.t();
    html! {
        p { (t.faces_found) ": " (analysis.faces.len()) }
        @if let Some(face) = &analysis.face {
            @let q = &face.quality;
            p #try-quality {
                (t.quality) ": "
                @if q.issues.is_empty() && q.warnings.is_empty() { "✓" }
                @for i in &q.issues { span .badge .r3 data-code=(i.as_str()) { (words::quality(lang, i.as_str())) } " " }
                @for w in &q.warnings { span .badge .r2 data-code=(w.as_str()) { (words::quality(lang, w.as_str())) } " " }
            }
        } @else {
            p .flash .error data-reason="no-face" { (t.no_face) }
        }
    }
}

/// `POST /console/try` (multipart: `csrf`, `name`, `id_number`, `photo`).
pub async fn check(
    State(state): State<AppState>,
    lang: Lang,
    form: Verified<Multipart>,
) -> Response {
    let (op, upload) = form.into_parts();
    let upload = match upload {
        Ok(u) => u,
        Err(why) => return render(&op, lang, vec![Flash::error(why.words(lang))], None, None),
    };
    let typed = fields::Typed::new(
        "try",
        [
            ("name", upload.text("name").unwrap_or_default()),
            ("id_number", upload.text("id_number").unwrap_or_default()),
        ],
    );
    let photo = upload.files("photo").next().cloned().unwrap_or_default();
    let fields = CheckFields {
        name: upload.text("name").map(str::to_owned),
        id_card: upload.text("id_number").map(str::to_owned),
        image: (!photo.is_empty()).then(|| B64.encode(&photo)),
        img_url: None,
    };
    // The API's check, as the console: not limited, never charged, recorded all the same.
    let task_no = RequestId::current_string();
    let mut ticket = state.app.begin_check(task_no.clone(), Origin::Console);
    let outcome = ticket.run(fields).await.map_err(ApiError::from);
    let status = match &outcome {
        Ok(_) => StatusCode::OK,
        Err(e) => e.status_and_code().0,
    };
    let ending = check::ending(outcome.as_ref().map(|c| &c.verification));
    if let Err(e) = ticket.finish(ending).await {
        let flash = vec![Flash::error(refusal_text(lang, &e))];
        return render(&op, lang, flash, None, Some(&typed));
    }
    let json = match &outcome {
        Ok(Checked {
            verification: v, ..
        }) => serde_json::to_string_pretty(&Envelope {
            code: 200,
            success: true,
            msg: Cow::Borrowed("成功"),
            task_no,
            data: Some(CheckData::from(v)),
        }),
        Err(e) => serde_json::to_string_pretty(&Envelope::<NoData> {
            code: status.as_u16(),
            success: false,
            msg: Cow::Owned(e.to_string()),
            task_no,
            data: None,
        }),
    }
    .expect("envelopes serialize");
    let drawn = match &outcome {
        Ok(Checked {
            verification: v,
            analysis: Some(analysis),
        }) => html! {
            (overlay(lang, "try-overlay", &photo, analysis))
            @if let Some(scored) = &v.scored { (score_line(lang, scored)) }
            (quality_list(lang, analysis))
        },
        _ => html! {},
    };
    let t = lang.t();
    let result = html! {
        section #try-result .card {
            h2 { (t.answer) " · HTTP " (status.as_u16()) }
            div .grid {
                div { (drawn) }
                pre #try-json { (json) }
            }
        }
    };
    render(&op, lang, Vec::new(), Some(result), Some(&typed))
}

/// `POST /console/try/compare` (multipart: `csrf`, `photo_a`, `photo_b`).
pub async fn compare(
    State(state): State<AppState>,
    lang: Lang,
    form: Verified<Multipart>,
) -> Response {
    let (op, upload) = form.into_parts();
    let upload = match upload {
        Ok(u) => u,
        Err(why) => return render(&op, lang, vec![Flash::error(why.words(lang))], None, None),
    };
    let t = lang.t();
    let limit = state.app.settings().limits.max_photo_bytes;
    let photo = |name: &str| -> Result<Vec<u8>, renzheng_app::AppError> {
        let bytes = upload.files(name).next().cloned().unwrap_or_default();
        renzheng_app::check::check_photo_bytes(&bytes, limit)?;
        Ok(bytes)
    };
    let (a, b) = match (photo("photo_a"), photo("photo_b")) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => {
            return render(
                &op,
                lang,
                vec![Flash::error(refusal_text(lang, &e))],
                None,
                None,
            )
        }
    };
    let compared = state.app.compare_photos(a.clone(), b.clone()).await;
    let (first, second, judged) = match compared {
        Ok(c) => c,
        Err(e) => {
            return render(
                &op,
                lang,
                vec![Flash::error(refusal_text(lang, &e))],
                None,
                None,
            )
        }
    };
    let verdict = judged.map(|(scored, verdict)| {
        let word = match verdict {
            Verdict::Same => "1",
            Verdict::Uncertain => "2",
            Verdict::Different => "3",
        };
        (scored, word)
    });
    let result = html! {
        section #try-result .card {
            h2 { (t.compare_two) }
            @if let Some((scored, word)) = &verdict {
                p { (t.result) " " span class={ "badge r" (word) } { (word) } }
                (score_line(lang, scored))
            }
            div .grid {
                div { h2 { (t.photo_a) } (overlay(lang, "try-overlay", &a, &first)) (quality_list(lang, &first)) }
                div { h2 { (t.photo_b) } (overlay(lang, "try-overlay-b", &b, &second)) (quality_list(lang, &second)) }
            }
        }
    };
    render(&op, lang, Vec::new(), Some(result), None)
}
