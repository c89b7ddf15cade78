//! The `harpoon_core` Python module (feature `python`, built with maturin).
//! Every call that scores or cycles releases the GIL while the engine works.

use crate::{Envelope, Fragment, FusionSettings, HarpoonEngine};
use pyo3::{
    exceptions::{PyTypeError, PyValueError},
    prelude::*,
    types::{PyDict, PyString},
};
use std::sync::Arc;

/// A JSON-shaped Python value (dicts, lists, numbers, strings) for a serde value.
fn to_python<T: serde::Serialize>(py: Python<'_>, value: &T) -> PyResult<Py<PyAny>> {
    let text = serde_json::to_string(value).map_err(|e| PyValueError::new_err(e.to_string()))?;
    Ok(py.import("json")?.call_method1("loads", (text,))?.unbind())
}

fn fragment_from(index: usize, item: &Bound<'_, PyAny>) -> PyResult<Fragment> {
    let default_idx = u32::try_from(index).unwrap_or(u32::MAX);
    if let Ok(body) = item.cast::<PyString>() {
        return Ok(Fragment {
            path: String::new(),
            idx: default_idx,
            lines: String::new(),
            body: body.to_str()?.to_owned(),
        });
    }
    let dict = item.cast::<PyDict>().map_err(|_| {
        PyTypeError::new_err(format!("fragments[{index}]: expected a dict or a str"))
    })?;
    let body: String = dict
        .get_item("body")?
        .ok_or_else(|| PyValueError::new_err(format!("fragments[{index}]: `body` is required")))?
        .extract()?;
    let path: String = match dict.get_item("path")? {
        Some(v) => v.extract()?,
        None => String::new(),
    };
    let idx: u32 = match dict.get_item("idx")? {
        Some(v) => v.extract()?,
        None => default_idx,
    };
    let lines: String = match dict.get_item("lines")? {
        Some(v) if v.cast::<PyString>().is_ok() => v.extract()?,
        Some(v) => v.str()?.to_str()?.to_owned(),
        None => String::new(),
    };
    Ok(Fragment {
        path,
        idx,
        lines,
        body,
    })
}

/// Scores code fragments and runs envelope cycles.
#[pyclass(name = "HarpoonEngine", module = "harpoon_core", frozen)]
struct PyEngine {
    inner: Arc<HarpoonEngine>,
}

#[pymethods]
impl PyEngine {
    #[new]
    #[pyo3(signature = (thread_count=None, hygiene_threshold=0.8, max_iterations=10))]
    fn new(
        thread_count: Option<usize>,
        hygiene_threshold: f32,
        max_iterations: u32,
    ) -> PyResult<Self> {
        let settings = FusionSettings {
            thread_count,
            hygiene_threshold,
            max_iterations,
            ..FusionSettings::default()
        };
        settings
            .validate()
            .map_err(|e| PyValueError::new_err(e.to_string()))?;
        Ok(Self {
            inner: Arc::new(HarpoonEngine::new(&settings)),
        })
    }

    /// Runs an envelope cycle over `fragments` (dicts with `body`, or strings).
    #[pyo3(signature = (fragments, hygiene_threshold=None, max_iterations=None))]
    fn envelope_cycle(
        &self,
        py: Python<'_>,
        fragments: &Bound<'_, PyAny>,
        hygiene_threshold: Option<f64>,
        max_iterations: Option<u32>,
    ) -> PyResult<EnvelopeCycle> {
        if let Some(t) = hygiene_threshold {
            if !(0.0..=1.0).contains(&t) {
                return Err(PyValueError::new_err(format!(
                    "hygiene_threshold {t} is out of range 0..=1"
                )));
            }
        }
        let fragments = fragments
            .try_iter()?
            .enumerate()
            .map(|(i, item)| fragment_from(i, &item?))
            .collect::<PyResult<Vec<_>>>()?;
        let engine = Arc::clone(&self.inner);
        let envelope =
            py.detach(move || engine.envelope_cycle(fragments, hygiene_threshold, max_iterations));
        Ok(EnvelopeCycle { envelope })
    }

    /// The hygiene report of one body (`path` picks the language when it has an extension).
    #[pyo3(signature = (body, path=""))]
    fn score(&self, py: Python<'_>, body: String, path: &str) -> PyResult<Py<PyAny>> {
        let fragment = Fragment::new(path, body);
        let engine = Arc::clone(&self.inner);
        let report = py.detach(move || engine.score(&fragment));
        to_python(py, &report)
    }
}

/// The result of an envelope cycle.
#[pyclass(module = "harpoon_core", frozen)]
struct EnvelopeCycle {
    envelope: Envelope,
}

#[pymethods]
impl EnvelopeCycle {
    /// Absorbed fragments with their scores and signals.
    #[getter]
    fn absorbed(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        to_python(py, &self.envelope.absorbed)
    }
    /// Fragments left below the threshold, with the reason.
    #[getter]
    fn pending(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        to_python(py, &self.envelope.pending)
    }
    /// Exact repeats.
    #[getter]
    fn duplicates(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        to_python(py, &self.envelope.duplicates)
    }
    /// Near-repeats.
    #[getter]
    fn near_duplicates(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        to_python(py, &self.envelope.near_duplicates)
    }
    /// Every step of the cycle.
    #[getter]
    fn events(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        to_python(py, &self.envelope.events)
    }
    /// The anchor chain.
    #[getter]
    fn chain(&self) -> Vec<String> {
        self.envelope.chain.clone()
    }
    /// Hash over the chain.
    #[getter]
    fn envelope_hash(&self) -> String {
        self.envelope.envelope_hash.clone()
    }
    /// Mean hygiene of the absorbed fragments.
    #[getter]
    fn hygiene_score(&self) -> f64 {
        self.envelope.hygiene_score
    }
    /// Refinement rounds used.
    #[getter]
    fn iterations(&self) -> u32 {
        self.envelope.iterations
    }
    /// Whether the chain verifies.
    fn verify(&self) -> bool {
        self.envelope.verify().is_ok()
    }
    /// The whole envelope as a dict.
    fn to_dict(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        to_python(py, &self.envelope)
    }
    fn __repr__(&self) -> String {
        format!(
            "EnvelopeCycle(absorbed={}, pending={}, duplicates={}, hygiene_score={:.3}, iterations={})",
            self.envelope.absorbed.len(),
            self.envelope.pending.len(),
            self.envelope.duplicates.len(),
            self.envelope.hygiene_score,
            self.envelope.iterations
        )
    }
}

/// Hex SHA-256 of `body` with line endings normalised.
#[pyfunction]
fn fragment_hash(body: &str) -> String {
    crate::fragment_hash(body)
}

/// The `harpoon_core` module.
#[pymodule]
fn harpoon_core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyEngine>()?;
    m.add_class::<EnvelopeCycle>()?;
    m.add_function(wrap_pyfunction!(fragment_hash, m)?)?;
    Ok(())
}
