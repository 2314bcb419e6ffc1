// A new incident for the team: a beep made by WebAudio (no sound file) and a vibration where
// the phone allows it. Browsers start sound only after the user touched the page, so the
// first tap or key anywhere turns it on (or the page's sound button).

let context = null;

/** Make sound possible (call it from a user's tap or key press). */
export function enableSound() {
  if (!window.AudioContext) return false;
  context ??= new AudioContext();
  context.resume();
  return true;
}

export function soundOn() {
  return context !== null && context.state !== "closed";
}

function beep(atS, frequencyHz) {
  const oscillator = context.createOscillator();
  const gain = context.createGain();
  oscillator.type = "square";
  oscillator.frequency.value = frequencyHz;
  gain.gain.setValueAtTime(0.0001, atS);
  gain.gain.exponentialRampToValueAtTime(0.3, atS + 0.02);
  gain.gain.exponentialRampToValueAtTime(0.0001, atS + 0.18);
  oscillator.connect(gain).connect(context.destination);
  oscillator.start(atS);
  oscillator.stop(atS + 0.2);
}

/** Sound and vibrate once for something new; counted on <body data-alerts>. */
export function alarm() {
  document.body.dataset.alerts = String(Number(document.body.dataset.alerts || 0) + 1);
  if (navigator.vibrate) navigator.vibrate([300, 150, 300]);
  if (!soundOn()) return;
  const now = context.currentTime;
  beep(now, 880);
  beep(now + 0.25, 1175);
}
