//! Verifying signatures: every record's detached JWS against the agency's live key,
//! on every core, a refusal audited for each signature that does not verify.

use super::*;

/// Submissions checked and their signatures verified, ready for [`process`].
pub struct Verifieds(pub(super) Vec<Verified>);

/// Checks a batch's records and verifies their signatures, on the agency's keys as
/// the readers see them: the costly part of an upload, done before it waits for the
/// writer, so that one upload verifies while another stores.
pub async fn verify(
    state: &AppState,
    uploader: &Uploader,
    submissions: Vec<Submission>,
) -> Result<Verifieds, Error> {
    let checked = submissions
        .into_iter()
        .map(|s| check(uploader, s))
        .collect();
    verify_checked(state, uploader, checked).await
}

/// Verifies the signatures of records already checked (see [`check`]).
pub async fn verify_checked(
    state: &AppState,
    uploader: &Uploader,
    checked: Vec<Result<Checked, Error>>,
) -> Result<Verifieds, Error> {
    let mut keys: HashMap<String, Option<Vec<u8>>> = HashMap::new();
    let mut reader = state.store.reader().acquire().await?;
    for c in checked.iter().flatten() {
        if !keys.contains_key(&c.kid) {
            let key =
                crate::store::agency_keys::agency_key(&mut reader, &uploader.agency.id, &c.kid)
                    .await?;
            keys.insert(c.kid.clone(), key);
        }
    }
    drop(reader);
    Ok(Verifieds(verify_all(checked, keys).await?))
}

/// A record refused by the checks or the signature: its record id if read, the
/// problem, and for signature refusals (which are audited) the audit reason.
pub(super) struct Rejection {
    pub(super) record_id: Option<String>,
    pub(super) problem: Error,
    pub(super) audit_reason: Option<&'static str>,
}

pub(super) type Verified = Result<Checked, Box<Rejection>>;

/// Verifies every signature, spread over the cores.
async fn verify_all(
    checked: Vec<Result<Checked, Error>>,
    keys: HashMap<String, Option<Vec<u8>>>,
) -> Result<Vec<Verified>, Error> {
    tokio::task::spawn_blocking(move || {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let chunk = checked.len().div_ceil(threads).max(64);
        let mut items: Vec<Option<Result<Checked, Error>>> =
            checked.into_iter().map(Some).collect();
        let mut out: Vec<Option<Verified>> = (0..items.len()).map(|_| None).collect();
        std::thread::scope(|scope| {
            for (inputs, outputs) in items.chunks_mut(chunk).zip(out.chunks_mut(chunk)) {
                let keys = &keys;
                scope.spawn(move || {
                    for (input, output) in inputs.iter_mut().zip(outputs.iter_mut()) {
                        let input = input.take().expect("each item is verified once");
                        *output = Some(verify_one(input, keys));
                    }
                });
            }
        });
        out.into_iter()
            .map(|v| v.expect("every item was verified"))
            .collect()
    })
    .await
    .map_err(|e| Error::internal(format!("signature verification failed to run: {e}")))
}

fn verify_one(item: Result<Checked, Error>, keys: &HashMap<String, Option<Vec<u8>>>) -> Verified {
    let checked = item.map_err(|problem| {
        Box::new(Rejection {
            record_id: None,
            problem,
            audit_reason: None,
        })
    })?;
    let record_id = Some(checked.record_id.clone());
    let Some(Some(public_key)) = keys.get(&checked.kid) else {
        let problem = Error::field(
            ErrorKind::UnknownKeyId,
            "signature",
            format!("no live key `{}` is registered to your agency", checked.kid),
        );
        return Err(Box::new(Rejection {
            record_id,
            problem,
            audit_reason: Some("unknown_key_id"),
        }));
    };
    let jws = jws::parse(&checked.signature).expect("parsed during the checks");
    if jws.verify(public_key, &checked.canonical).is_err() {
        let problem = Error::field(
            ErrorKind::BadSignature,
            "signature",
            format!(
                "does not verify under key `{}` over the canonical (RFC 8785) statement",
                checked.kid
            ),
        );
        return Err(Box::new(Rejection {
            record_id,
            problem,
            audit_reason: Some("bad_signature"),
        }));
    }
    Ok(checked)
}

impl Verifieds {
    /// The records in groups of at most `size`, in order, to store a group at a time.
    pub fn into_chunks(self, size: usize) -> Vec<Verifieds> {
        let mut chunks = Vec::with_capacity(self.0.len().div_ceil(size.max(1)));
        let mut items = self.0.into_iter().peekable();
        while items.peek().is_some() {
            chunks.push(Verifieds(items.by_ref().take(size.max(1)).collect()));
        }
        chunks
    }

    /// How many records were refused by the checks or their signature.
    pub fn rejected(&self) -> usize {
        self.0.iter().filter(|v| v.is_err()).count()
    }

    /// Each record's agency record id (when read) and, if it was refused, why.
    pub fn verdicts(&self) -> impl Iterator<Item = (Option<&str>, Option<&Error>)> {
        self.0.iter().map(|v| match v {
            Ok(checked) => (Some(checked.record_id.as_str()), None),
            Err(rejection) => (rejection.record_id.as_deref(), Some(&rejection.problem)),
        })
    }

    /// The audit entries of the refused signatures, for a batch that stores nothing.
    pub fn refusals(&self, uploader: &Uploader) -> Vec<NewEntry> {
        self.0
            .iter()
            .filter_map(|v| v.as_ref().err()?.audit_reason)
            .map(|reason| upload_entry(uploader).refused(reason))
            .collect()
    }
}
