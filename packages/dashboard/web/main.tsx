/**
 * The dashboard page's entry: takes the token from the address and removes it from the address bar,
 * keeping it for this tab only (`sessionStorage`: a reload finds it again; another tab, or the tab
 * once closed, does not), then connects and renders.
 * @module
 */
import 'uplot/dist/uPlot.min.css';
import './style.css';
import { render } from 'preact';
import { App } from './app.tsx';
import { Live } from './live.ts';

/** Where this tab keeps the token between reloads. */
const TAB_TOKEN = 'improv-token';

const params = new URLSearchParams(location.search);
const token = params.get('token') ?? tabStorage()?.getItem(TAB_TOKEN) ?? undefined;
if (params.has('token')) {
  if (token) tabStorage()?.setItem(TAB_TOKEN, token);
  params.delete('token');
  const rest = params.toString();
  history.replaceState(history.state, '', `${location.pathname}${rest === '' ? '' : `?${rest}`}${location.hash}`);
}

const live = new Live(token);
render(<App live={live} />, document.getElementById('app')!);

/** The tab's `sessionStorage`, or undefined where the browser refuses it (storage turned off). */
function tabStorage(): Storage | undefined {
  try {
    return window.sessionStorage;
  } catch {
    return undefined;
  }
}
