// Upload one file with tus-js-client under Node, resuming a previous attempt when the URL
// storage (a JSON file) holds one for this file: tests/test_tus_clients.py runs it, kills it
// part-way, and runs it again.
//   node tus_upload.mjs ENDPOINT TOKEN FILE URL_STORAGE CHUNK_BYTES
import * as fs from 'node:fs'
import * as path from 'node:path'
import { FileUrlStorage, Upload } from 'tus-js-client'

const [endpoint, token, file, storagePath, chunk] = process.argv.slice(2)
const size = fs.statSync(file).size

const upload = new Upload(fs.createReadStream(file), {
  endpoint,
  chunkSize: Number(chunk),
  headers: { Authorization: `Bearer ${token}` },
  metadata: { project: 'tower-a', filename: path.basename(file), phase: 'node' },
  uploadSize: size,
  urlStorage: new FileUrlStorage(storagePath),
  storeFingerprintForResuming: true,
  removeFingerprintOnSuccess: true,
  retryDelays: [0, 500],
  onProgress: (sent) => console.log(`progress ${sent}`),
  onError: (error) => {
    console.error(`failed: ${error}`)
    process.exit(1)
  },
  onSuccess: () => {
    console.log(`done ${upload.url}`)
  },
})

const previous = await upload.findPreviousUploads()
if (previous.length > 0) {
  console.log(`resuming ${previous[0].uploadUrl}`)
  upload.resumeFromPreviousUpload(previous[0])
}
upload.start()
