// Attachments: checked against the server's limits before anything is uploaded, removable before sending,
// and PDFs and images previewed in the page (the server serves a preview sandboxed, framable by us only).
import { useEffect, useState } from "preact/hooks";
import { fill, formatBytes, useT } from "../i18n";
import { attachmentUrl, getAttachmentLimits } from "../services";
import type { Attachment, AttachmentLimits } from "../types";

const PREVIEWABLE = new Set(["application/pdf", "image/png", "image/jpeg", "image/gif"]);

/** The allowed content type of a file: its own, or (when the browser gives none) by its name's ending. */
export function allowedType(file: File, limits: AttachmentLimits): string | null {
  const name = file.name.toLowerCase();
  const match = limits.types.find((kind) => kind.content_type === file.type || (!file.type && kind.extensions.some((ext) => name.endsWith(ext))));
  return match?.content_type ?? null;
}

/** The file picker of the composer: rejects too big or unsupported files at once, lists the chosen ones. */
export function FilePicker({ files, onChange }: { files: File[]; onChange: (files: File[]) => void }) {
  const t = useT();
  const [limits, setLimits] = useState<AttachmentLimits | null>(null);
  const [rejected, setRejected] = useState<string[]>([]);
  useEffect(() => {
    getAttachmentLimits().then(setLimits, () => undefined); // without limits the server still checks
  }, []);

  function choose(input: HTMLInputElement) {
    const chosen = [...(input.files ?? [])];
    input.value = ""; // the list below shows what is chosen; the same file can be chosen again
    const problems: string[] = [];
    const accepted = chosen.flatMap((file) => {
      if (!limits) return [file];
      const type = allowedType(file, limits);
      if (!type) {
        problems.push(fill(t("fileTypeRefused"), { name: file.name }));
        return [];
      }
      if (file.size > limits.max_bytes) {
        problems.push(fill(t("fileTooBig"), { name: file.name, size: formatBytes(file.size), max: formatBytes(limits.max_bytes) }));
        return [];
      }
      return [type === file.type ? file : new File([file], file.name, { type })];
    });
    setRejected(problems);
    onChange([...files, ...accepted]);
  }

  const accept = limits?.types.flatMap((kind) => [kind.content_type, ...kind.extensions]).join(",");
  return (
    <div class="field file-picker">
      <label for="composer-files">{t("attach")}</label>
      <input id="composer-files" type="file" multiple accept={accept} aria-describedby="composer-files-hint" onChange={(event) => choose(event.target as HTMLInputElement)} />
      <span id="composer-files-hint" class="hint">
        {limits && fill(t("fileLimits"), { max: formatBytes(limits.max_bytes) })}
      </span>
      {rejected.length > 0 && (
        <ul class="notice notice-error" role="alert" data-testid="file-rejected">
          {rejected.map((text) => (
            <li key={text}>{text}</li>
          ))}
        </ul>
      )}
      {files.length > 0 && (
        <ul class="chosen-files" aria-label={t("chosenFiles")} data-testid="chosen-files">
          {files.map((file, index) => (
            <li key={`${index}-${file.name}`}>
              {file.type.startsWith("image/") && <LocalThumbnail file={file} />}
              <span>
                {file.name} <span class="hint">({formatBytes(file.size)})</span>
              </span>
              <button type="button" aria-label={`${t("removeAttachment")}: ${file.name}`} onClick={() => onChange(files.filter((_, i) => i !== index))}>
                {t("removeAttachment")}
              </button>
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

function LocalThumbnail({ file }: { file: File }) {
  const [url, setUrl] = useState<string | null>(null);
  useEffect(() => {
    const objectUrl = URL.createObjectURL(file);
    setUrl(objectUrl);
    return () => URL.revokeObjectURL(objectUrl);
  }, [file]);
  return url ? <img class="thumbnail" src={url} alt="" /> : null;
}

/** A sent message's attachments: download links, and "Förhandsvisa" for PDFs and images. */
export function AttachmentList({ conversationId, attachments }: { conversationId: string; attachments: Attachment[] }) {
  const t = useT();
  const [open, setOpen] = useState<string | null>(null);
  return (
    <ul class="attachments" aria-label={t("attachments")}>
      {attachments.map((attachment) => {
        const shown = open === attachment.id;
        const url = attachmentUrl(conversationId, attachment.id);
        return (
          <li key={attachment.id}>
            <a href={url} download={attachment.filename}>
              {attachment.filename}
            </a>{" "}
            <span class="hint">({formatBytes(attachment.size)})</span>{" "}
            {PREVIEWABLE.has(attachment.content_type) && (
              <button type="button" aria-expanded={shown} aria-label={`${t(shown ? "closePreview" : "preview")}: ${attachment.filename}`} onClick={() => setOpen(shown ? null : attachment.id)}>
                {t(shown ? "closePreview" : "preview")}
              </button>
            )}
            {shown &&
              (attachment.content_type === "application/pdf" ? (
                <iframe class="preview preview-pdf" src={`${url}?inline=true`} title={`${t("preview")}: ${attachment.filename}`} data-testid="pdf-preview" />
              ) : (
                <img class="preview" src={`${url}?inline=true`} alt={`${t("preview")}: ${attachment.filename}`} data-testid="image-preview" />
              ))}
          </li>
        );
      })}
    </ul>
  );
}
