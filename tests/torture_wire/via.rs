//! Rewriting the top Via of a corpus message (sent-by set to the test socket, `received` and
//! `maddr` removed) so that no answer can leave loopback, and the test of that rewrite.

use super::corpus_dir;

fn find(h: &[u8], n: &[u8]) -> Option<usize> {
    h.windows(n.len()).position(|w| w == n)
}

fn is_lws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// Rewrites the sent-by of the top Via to `sent_by` and removes its `received` and `maddr`
/// parameters; everything else (folding, odd spacing, other Via values and rows) byte for byte.
/// None when there is no Via or its sent-protocol cannot be found.
pub(crate) fn rewrite_top_via(msg: &[u8], sent_by: &str) -> Option<Vec<u8>> {
    let head_end = find(msg, b"\r\n\r\n").map(|i| i + 2).unwrap_or(msg.len());
    let (via_start, via_end) = top_via_lines(&msg[..head_end])?;
    let seg = &msg[via_start..via_end];
    let (host_start, host_end) = sent_by_span(seg)?;
    let mut new_seg = seg[..host_start].to_vec();
    new_seg.extend_from_slice(sent_by.as_bytes());
    // The parameters of the first Via value, without received= and maddr=; the other values as sent.
    let rest = &seg[host_end..];
    let value_end = rest.iter().position(|b| *b == b',').unwrap_or(rest.len());
    let (params, tail) = rest.split_at(value_end);
    new_seg.extend_from_slice(&without_received_and_maddr(params));
    new_seg.extend_from_slice(tail);
    let mut out = msg[..via_start].to_vec();
    out.extend_from_slice(&new_seg);
    out.extend_from_slice(&msg[via_end..]);
    Some(out)
}

/// Where the first header line named Via (or `v`) starts in `head` and where it ends, with its
/// continuation lines.
fn top_via_lines(head: &[u8]) -> Option<(usize, usize)> {
    // Line starts (after each CRLF), skipping the start line.
    let mut starts = Vec::new();
    let mut i = 0;
    while let Some(p) = find(&head[i..], b"\r\n") {
        let s = i + p + 2;
        if s >= head.len() {
            break;
        }
        starts.push(s);
        i = s;
    }
    let line_end = |s: usize| find(&head[s..], b"\r\n").map(|p| s + p).unwrap_or(head.len());
    let (li, &via_start) = starts.iter().enumerate().find(|(_, &s)| {
        let l = &head[s..line_end(s)];
        if l.first().is_none_or(|b| *b == b' ' || *b == b'\t') {
            return false;
        }
        match l.iter().position(|b| *b == b':') {
            Some(c) => {
                let name = String::from_utf8_lossy(&l[..c]).trim().to_ascii_lowercase();
                name == "via" || name == "v"
            }
            None => false,
        }
    })?;
    let mut via_end = line_end(via_start);
    for &s in &starts[li + 1..] {
        if matches!(head.get(s), Some(b' ') | Some(b'\t')) {
            via_end = line_end(s);
        } else {
            break;
        }
    }
    Some((via_start, via_end))
}

/// In a Via header line, the span of the first value's sent-by host[:port]: after
/// `SIP / 2.0 / transport` and linear white space (any of it may be folded or spaced).
fn sent_by_span(seg: &[u8]) -> Option<(usize, usize)> {
    let colon = seg.iter().position(|b| *b == b':')?;
    let mut p = colon + 1;
    let skip_lws = |p: &mut usize| {
        while *p < seg.len() && is_lws(seg[*p]) {
            *p += 1;
        }
    };
    let token = |p: &mut usize| -> bool {
        let s = *p;
        while *p < seg.len() && !is_lws(seg[*p]) && !matches!(seg[*p], b'/' | b';' | b',') {
            *p += 1;
        }
        *p > s
    };
    skip_lws(&mut p);
    if !seg[p..].to_ascii_uppercase().starts_with(b"SIP") {
        return None;
    }
    p += 3;
    for _ in 0..2 {
        skip_lws(&mut p);
        if seg.get(p) != Some(&b'/') {
            return None;
        }
        p += 1;
        skip_lws(&mut p);
        if !token(&mut p) {
            return None;
        }
    }
    let before = p;
    skip_lws(&mut p);
    if p == before {
        return None;
    }
    let host_start = p;
    while p < seg.len() && !is_lws(seg[p]) && !matches!(seg[p], b';' | b',') {
        p += 1;
    }
    (p > host_start).then_some((host_start, p))
}

/// Via parameters (`;name=value...`) without `received` and `maddr`, the rest byte for byte.
fn without_received_and_maddr(params: &[u8]) -> Vec<u8> {
    let mut q = 0;
    let mut kept = Vec::new();
    while q < params.len() {
        if params[q] == b';' {
            let e = params[q + 1..].iter().position(|b| *b == b';').map(|x| q + 1 + x).unwrap_or(params.len());
            let name: String =
                String::from_utf8_lossy(&params[q + 1..e]).split('=').next().unwrap_or("").trim().to_ascii_lowercase();
            if name != "received" && name != "maddr" {
                kept.extend_from_slice(&params[q..e]);
            }
            q = e;
        } else {
            kept.push(params[q]);
            q += 1;
        }
    }
    kept
}

#[test]
fn via_rewrite_keeps_everything_else() {
    let m = b"OPTIONS sip:x SIP/2.0\r\nTo: <sip:a@b>\r\nVia: SIP/2.0/UDP [2001:db8::9:1];received=2001:db8::9:255;branch=z9hG4bKas3;maddr=1.2.3.4\r\nVia: SIP/2.0/UDP h;received=9.9.9.9\r\n\r\nbody";
    let r = String::from_utf8(rewrite_top_via(m, "127.0.0.1:5").unwrap()).unwrap();
    assert_eq!(
        r,
        "OPTIONS sip:x SIP/2.0\r\nTo: <sip:a@b>\r\nVia: SIP/2.0/UDP 127.0.0.1:5;branch=z9hG4bKas3\r\nVia: SIP/2.0/UDP h;received=9.9.9.9\r\n\r\nbody"
    );
    let wsinv = std::fs::read(corpus_dir().join("rfc4475/wsinv.dat")).unwrap();
    let r = rewrite_top_via(&wsinv, "127.0.0.1:5").unwrap();
    let text = String::from_utf8_lossy(&r);
    assert!(text.contains("Via  : SIP  /   2.0\r\n /UDP\r\n    127.0.0.1:5;branch=390skdjuw\r\n"), "{text}");
    assert_eq!(r.len(), wsinv.len() - "192.0.2.2".len() + "127.0.0.1:5".len());
    let longreq = std::fs::read(corpus_dir().join("rfc4475/longreq.dat")).unwrap();
    let r = String::from_utf8_lossy(&rewrite_top_via(&longreq, "127.0.0.1:5").unwrap()).into_owned();
    assert!(r.contains("Via: SIP/2.0/TCP 127.0.0.1:5\r\n"), "{r}");
    let trans = std::fs::read(corpus_dir().join("rfc4475/transports.dat")).unwrap();
    let r = String::from_utf8_lossy(&rewrite_top_via(&trans, "127.0.0.1:5").unwrap()).into_owned();
    assert!(r.contains("Via: SIP/2.0/UDP 127.0.0.1:5;branch=z9hG4bKkdjuw\r\n"), "{r}");
    let test = std::fs::read(corpus_dir().join("rfc4475/test.dat")).unwrap();
    assert!(rewrite_top_via(&test, "127.0.0.1:5").is_none());
}
