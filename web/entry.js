// What the page needs from Uppy, and nothing else: the core (state, events, cancel), tus
// (resumable, against /v1/tus/ when the host speaks it) and XHRUpload (the streamed upload
// endpoint, always there). The page draws its own file list, so no Dashboard or its CSS.
import Uppy from "@uppy/core";
import Tus from "@uppy/tus";
import XHRUpload from "@uppy/xhr-upload";

globalThis.AecflowUppy = { Uppy, Tus, XHRUpload };
