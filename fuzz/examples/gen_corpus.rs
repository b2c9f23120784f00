//! Writes the seed corpora of the fuzz targets into `fuzz/corpus/<target>/`, from real encoded
//! datagrams, frames and manifests (the corpus folder is not committed; this generator is).
//!
//! Run from anywhere: `cargo run --manifest-path fuzz/Cargo.toml --example gen_corpus`.

use std::fs;
use std::path::{Path, PathBuf};

use p2pshare_proto::manifest::{MIN_CHUNK_SIZE, ManifestBuilder};
use p2pshare_proto::noise::{Handshake, LocalKeys};
use p2pshare_proto::python::wire::{LegacyAnnounce, LegacyFile, LegacyRequest, encode_reply};
use p2pshare_proto::rng::KeyRng;
use p2pshare_proto::wire::Announce;
use p2pshare_proto::wire::frame::{
    CatalogEntry, ErrorCode, Message, encode_chunk_header, encode_message,
};
use p2pshare_proto::wire::signed::{self, Announcement, Mark};
use p2pshare_proto::{ContentId, Identity, PeerId, hex, sha256};

fn write(dir: &Path, data: &[u8]) {
    fs::create_dir_all(dir).expect("create corpus dir");
    let name = hex(&sha256(data)[..8]);
    fs::write(dir.join(name), data).expect("write seed");
}

#[path = "../../proto/tests/support/sample_messages.rs"]
mod sample_messages;
use sample_messages::messages;

fn chunk_frame(index: u32, data: &[u8]) -> Vec<u8> {
    let mut f = encode_chunk_header(&ContentId([4; 32]), index, data.len());
    f.extend_from_slice(data);
    f
}

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("corpus");

    // decode_datagram: announcements, and near misses.
    let dir = root.join("decode_datagram");
    for (i, bye) in [(0u64, false), (u64::MAX, true), (77, false)] {
        let a = Announce {
            peer: PeerId([i as u8; 32]),
            instance: i,
            port: 10000,
            revision: i / 3,
            bye,
        };
        let d = a.encode();
        write(&dir, &d);
        write(&dir, &d[..d.len() - 3]);
    }
    write(&dir, br#"{"port": 10000, "files": ["a.txt"]}"#);
    write(&dir, b"P2PS\x02");

    // decode_legacy: what the Python program sends (announcements, request lines, replies).
    let dir = root.join("decode_legacy");
    let py = LegacyAnnounce {
        port: 10001,
        files: vec![
            LegacyFile {
                name: "a.txt".into(),
                total_chunks: 3,
                file_hash: sha256(b"abc"),
            },
            LegacyFile {
                name: "movie.bin".into(),
                total_chunks: 70_000,
                file_hash: [0xee; 32],
            },
        ],
        rejected: 0,
        origin: None,
    };
    write(&dir, &py.encode());
    let ours = LegacyAnnounce {
        origin: Some(PeerId([5; 32])),
        ..py
    };
    write(&dir, &ours.encode());
    write(
        &dir,
        br#"{"type": "P2P_PEER_DISCOVERY", "port": 10000, "files": {}}"#,
    );
    write(&dir, br#"{"type": "P2P_PEER_DISCOVERY", "port": 1, "files": {"a b": {"total_chunks": -1, "filehash": "AB"}}}"#);
    let req = LegacyRequest {
        name: "a.txt".into(),
        index: 2,
    };
    write(&dir, &req.encode());
    write(&dir, b"chunk a.txt");
    write(&dir, &encode_reply(b"one chunk of bytes"));
    write(&dir, &encode_reply(&[0x5a; 1024]));

    // decode_frames: flags (0x80: prepend the preamble; low bits: cuts), cuts, frames.
    let dir = root.join("decode_frames");
    let mut all = Vec::new();
    for m in messages() {
        let f = encode_message(&m);
        let mut seed = vec![0x80];
        seed.extend_from_slice(&f);
        write(&dir, &seed);
        all.extend(f);
    }
    all.extend(chunk_frame(3, b"hello, chunk"));
    all.extend(chunk_frame(0, &[0xab; 300]));
    let mut seed = vec![0x83, 0, 1, 0, 40, 1, 0];
    seed.extend_from_slice(&all);
    write(&dir, &seed);
    let mut seed = vec![0x00];
    seed.extend_from_slice(&all[..all.len() / 2]);
    write(&dir, &seed);
    write(&dir, &[0x80, 0, 0, 0, 0]);
    write(&dir, &[0x80, 0xff, 0xff, 0xff, 0xff, 1]);
    write(&dir, &[0x80, 0, 0, 0, 2, 2, 0]);
    write(&dir, b"\x00chunk movie.bin 3\n");

    // verify and node_inputs take structured input; seed them with real encodings to splice.
    let file: Vec<u8> = (0..2 * MIN_CHUNK_SIZE + 99)
        .map(|i| (i % 251) as u8)
        .collect();
    let mut b = ManifestBuilder::new(MIN_CHUNK_SIZE);
    b.update(&file);
    let m = b.finish().expect("small file");
    for target in ["verify", "node_inputs"] {
        let dir = root.join(target);
        let mut seed = vec![0xff; 4];
        seed.extend(m.encode());
        write(&dir, &seed);
        write(&dir, &all);
        write(&dir, &[0; 64]);
    }
    // decode_signed: genuine signed datagrams (version 2), cut and extended.
    let dir = root.join("decode_signed");
    let id = Identity::generate(&mut KeyRng::new([7; 32]));
    for (seq, bye) in [(0u64, false), (u64::MAX, true)] {
        let a = Announcement {
            mark: Mark {
                instance: 1_700_000_000_000,
                seq,
            },
            port: 10000,
            revision: seq / 3,
            bye,
        };
        let d = signed::encode(&a, &id);
        write(&dir, &d);
        write(&dir, &d[..d.len() - 1]);
    }

    // noise: a role byte (mode % 3: 0 acceptor, 1 dialer, 2 transport; bit 2: AES), then
    // pieces (a length byte each): a dialer's preamble and message 1 for the acceptor, an
    // acceptor's preamble for the dialer, a record for a transport.
    let dir = root.join("noise");
    let mut rng = KeyRng::new([8; 32]);
    let them = LocalKeys::new(&Identity::generate(&mut rng), &mut rng);
    let mut d = Handshake::dial(&them, None, true, [9; 32]);
    let mut first = Vec::new();
    d.poll_transmit(&mut first);
    let mut seed = vec![6, first.len() as u8];
    seed.extend_from_slice(&first);
    write(&dir, &seed);
    let mut answer = Vec::new();
    Handshake::accept(&them, true, [9; 32]).poll_transmit(&mut answer);
    if d.handle_input(&answer).is_ok() {
        let mut message1 = Vec::new();
        d.poll_transmit(&mut message1);
        seed.push(message1.len() as u8);
        seed.extend_from_slice(&message1);
        write(&dir, &seed);
    }
    let mut seed = vec![4, answer.len() as u8];
    seed.extend_from_slice(&answer);
    write(&dir, &seed);
    write(&dir, &[2, 2, 0, 20, 20, 0xaa]);
    // link: links of every form (a file and a folder, both families, a zone, the short
    // form), and near misses.
    let dir = root.join("link");
    let id = ContentId([0xab; 32]).to_hex();
    let key = PeerId([1; 32]).to_hex();
    for l in [
        format!("p2pshare://{id}?peer={key}@10.0.0.2:10000&peer={key}@[2001:db8::2]:10000"),
        format!("p2pshare://{id}?peer={key}"),
        format!("p2pshare://{id}"),
        format!("p2pshare://my%20photos/2024/?peer={key}@[fe80::1%25eth0]:10000"),
        format!("p2pshare://{id}?peer={key}@[::ffff:10.0.0.9]:5&peer={key}@127.0.0.1:1"),
        format!("P2PSHARE://{id}/?peer={key}&peer={key}"),
        format!("p2pshare://{id}?peer={key}@[fe80::1%eth0]:1"),
        format!("p2pshare://{id}?name=x&peer={key}@host:1"),
        "https://example.com/a%zz/".to_owned(),
    ] {
        write(&dir, l.as_bytes());
    }
    println!("seed corpora written under {}", root.display());
}
