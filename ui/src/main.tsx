import { render } from "preact";
import { App } from "./App";
import { tauriApi } from "./api/tauri";
import "./styles.css";

const root = document.getElementById("app");
if (root) render(<App api={tauriApi} />, root);
