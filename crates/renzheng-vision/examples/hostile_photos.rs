//! What hostile photos cost the decoder at the default limits: time and peak memory.
//!
//! ```sh
//! cargo run -p renzheng-vision --example hostile_photos -- all
//! ```
//!
//! Each case runs in a fresh process; peak RSS is measured from just before decoding
//! (the input stays resident, so it counts): a progressive JPEG at the
//! pixel budget with the most scans allowed (the costliest photo accepted), the same with
//! 5,000 scans (the scan bomb, refused), a 16-bit PNG at the pixel budget, and a tiny
//! RLE BMP declaring 40 MP.

use std::io::Cursor;
use std::time::Instant;

use image::{DynamicImage, ImageFormat};
use renzheng_vision::{decode_rgb_as_stored, DecodeLimits};

const CASES: [&str; 5] = [
    "jpeg-64-scans",
    "jpeg-5000-scans",
    "jpeg-5000-scans-no-scan-limit",
    "png-16-bit",
    "bmp-rle-40mp",
];

fn main() {
    let case = std::env::args().nth(1).unwrap_or_else(|| "all".into());
    if case == "all" {
        let exe = std::env::current_exe().unwrap();
        println!("| case | bytes | decode | result | peak RSS |\n|---|---|---|---|---|");
        for case in CASES {
            let out = std::process::Command::new(&exe).arg(case).output().unwrap();
            print!("{}", String::from_utf8_lossy(&out.stdout));
        }
        return;
    }
    let mut limits = DecodeLimits::default();
    if case.ends_with("no-scan-limit") {
        // What the scan bomb would cost without the scan limit.
        limits.max_jpeg_scans = usize::MAX;
    }
    let side = 4096; // 4096² = the 2^24-pixel budget
    let bytes = match case.as_str() {
        "jpeg-64-scans" => scan_bomb(side, limits.max_jpeg_scans),
        "jpeg-5000-scans" | "jpeg-5000-scans-no-scan-limit" => scan_bomb(side, 5_000),
        "png-16-bit" => png16(side as u32),
        "bmp-rle-40mp" => rle_bmp(8_000, 5_000),
        other => panic!("unknown case {other}; one of {CASES:?}"),
    };
    // Peak RSS from here on: the input's generation is not the decoder's cost.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let started = Instant::now();
    let result = decode_rgb_as_stored(&bytes, &limits);
    let elapsed = started.elapsed();
    let outcome = match &result {
        Ok(img) => format!("decoded {}×{}", img.width(), img.height()),
        Err(e) => format!("refused: {e}"),
    };
    println!(
        "| {case} | {} | {:.3} s | {outcome} | {} MB |",
        bytes.len(),
        elapsed.as_secs_f64(),
        peak_rss_kb() / 1024
    );
}

/// A progressive JPEG of `side`² pixels whose last scan is repeated until it has `scans`.
fn scan_bomb(side: usize, scans: usize) -> Vec<u8> {
    // A smooth picture: small scans, so thousands of them fit in a 1 MB upload.
    let pixels: Vec<u8> = (0..side * side * 3)
        .map(|i| ((i / 3) % side / 16) as u8)
        .collect();
    let mut c = mozjpeg::Compress::new(mozjpeg::ColorSpace::JCS_RGB);
    c.set_size(side, side);
    c.set_progressive_mode();
    let mut started = c.start_compress(Vec::new()).unwrap();
    started.write_scanlines(&pixels).unwrap();
    let jpeg = started.finish().unwrap();
    let starts: Vec<usize> = (0..jpeg.len() - 1)
        .filter(|&i| jpeg[i] == 0xFF && jpeg[i + 1] == 0xDA)
        .collect();
    let last = *starts.last().unwrap();
    let end = jpeg.len() - 2; // before EOI
    let mut out = jpeg[..end].to_vec();
    for _ in starts.len()..scans {
        out.extend_from_slice(&jpeg[last..end]);
    }
    out.extend_from_slice(&[0xFF, 0xD9]);
    out
}

fn png16(side: u32) -> Vec<u8> {
    let img = image::ImageBuffer::<image::Rgb<u16>, _>::from_fn(side, side, |x, y| {
        image::Rgb([(x * 16) as u16, (y * 16) as u16, 0x8000])
    });
    let mut out = Vec::new();
    DynamicImage::ImageRgb16(img)
        .write_to(&mut Cursor::new(&mut out), ImageFormat::Png)
        .unwrap();
    out
}

/// An 8-bit RLE BMP header declaring `w`×`h` with almost no data.
fn rle_bmp(w: i32, h: i32) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(b"BM");
    b.extend_from_slice(&(1078u32 + 4).to_le_bytes());
    b.extend_from_slice(&[0; 4]);
    b.extend_from_slice(&1078u32.to_le_bytes());
    b.extend_from_slice(&40u32.to_le_bytes());
    b.extend_from_slice(&w.to_le_bytes());
    b.extend_from_slice(&h.to_le_bytes());
    b.extend_from_slice(&1u16.to_le_bytes());
    b.extend_from_slice(&8u16.to_le_bytes());
    b.extend_from_slice(&1u32.to_le_bytes()); // BI_RLE8
    b.extend_from_slice(&[0; 20]);
    b.extend(std::iter::repeat_n(0u8, 1024)); // palette
    b.extend_from_slice(&[0, 1]); // end of bitmap
    b
}

fn peak_rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).map(|v| v.parse().unwrap_or(0)))
        })
        .unwrap_or(0)
}
