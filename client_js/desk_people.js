// The people directory's photo on the desk (/editor/people): a photo chosen in the form
// is uploaded at once through /api/media (processed and stripped of its metadata like any
// photo), and the form carries its media id. Without JavaScript the form saves names and
// descriptions, and says that photos need it.

import { newKey } from "./desk_common.js";
import { uploadFailureText, uploadPhoto } from "./desk_uploads.js";

/** Enhance every person form's photo field on the page. */
export function setUpPersonPhotos() {
  for (const field of document.querySelectorAll(".person-photo")) {
    setUp(/** @type {HTMLElement} */ (field));
  }
}

/** @param {HTMLElement} field */
function setUp(field) {
  const file = /** @type {HTMLInputElement | null} */ (field.querySelector('input[type="file"]'));
  const id = /** @type {HTMLInputElement | null} */ (field.querySelector('input[name="photo"]'));
  const status = /** @type {HTMLElement | null} */ (field.querySelector(".person-photo-status"));
  const img = /** @type {HTMLImageElement | null} */ (field.querySelector("img"));
  const form = field.closest("form");
  const submit = /** @type {HTMLButtonElement | null} */ (form?.querySelector('button[type="submit"]') ?? null);
  if (!file || !id || !status || !submit) return;
  field.querySelector(".person-photo-off")?.remove();
  file.hidden = false;
  file.addEventListener("change", async () => {
    const chosen = file.files?.[0];
    if (!chosen) return;
    submit.disabled = true;
    status.textContent = "Uploading the photo…";
    try {
      const result = await uploadPhoto(chosen, chosen.name, "", newKey(), (sent) => {
        status.textContent = `Uploading the photo… ${Math.round(sent * 100)}%`;
      }).done;
      if (result.ok) {
        id.value = String(result.data.id);
        const small = [...result.data.variants].sort((a, b) => a.width - b.width)[0];
        if (img && small) {
          img.src = small.url;
          img.hidden = false;
        }
        status.textContent = "Photo ready: save to keep it.";
      } else {
        status.textContent = `Not uploaded: ${uploadFailureText(result)}`;
        file.value = "";
      }
    } catch {
      status.textContent = "Not uploaded: the connection failed. Choose the photo again.";
      file.value = "";
    } finally {
      submit.disabled = false;
    }
  });
}
