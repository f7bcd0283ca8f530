/**
 * The dashboard page's entry: takes the token from the address (and removes it from the address
 * bar, keeping it in memory only), then connects and renders.
 * @module
 */
import 'uplot/dist/uPlot.min.css';
import './style.css';
import { render } from 'preact';
import { App } from './app.tsx';
import { Live } from './live.ts';

const params = new URLSearchParams(location.search);
const token = params.get('token') ?? undefined;
if (params.has('token')) {
  params.delete('token');
  const rest = params.toString();
  history.replaceState(history.state, '', `${location.pathname}${rest === '' ? '' : `?${rest}`}${location.hash}`);
}

const live = new Live(token);
render(<App live={live} />, document.getElementById('app')!);
